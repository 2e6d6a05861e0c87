"""Calls of one context's API by another, on whichever host each lives.

A context that needs another's API declares a port: an attribute of its
`Ports` protocol named after the provider (`catalog: Catalog`, see
`Context.ports_to`). Each method of the port's protocol is the function of
the same name in the provider's `api` module, which takes a unit of work
(opened for a query) and then the method's arguments. A host wires the port
one of two ways:

- in-process (`in_process_port`), while the provider lives in the same
  monolith: a direct call of the API function;
- over HTTP (`ApiClient`), once either side lives elsewhere: `POST
  /_api/<provider>/<method>` through the router, which sends it to the
  provider's writer, the host whose answer is never staler than the data.
  `migrate extract` generates a client class per port of the extracted
  context (`<context>_clients.py`); the monolith builds the same class at
  run time (`client_class`) for a provider it no longer hosts.

Both hosts answer those calls (`answer`): the body is a JSON object of the
arguments by name, the reply `200 {"result": ...}`. Values travel by the
function's type hints: int, float, str, bool, None, Decimal (as text), and
lists, tuples and dicts of them (a dict's keys as text); anything else is
refused when the surface is built, not at the first call.

What a client guarantees: a call answers with the decoded result, or raises
`RemoteCallFailed` naming the URL and the status (or the transport error),
so a caller never mistakes an outage for an answer. Each call times out
after `timeout` seconds (default 5) and is not retried: the calls are
queries, and the caller's own request fails cleanly instead.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from migrate.errors import ManifestError, MigrateError
from migrate.kernel.http import COMMON_ERRORS, MalformedBody, Reply, parse_body
from migrate.manifest import Context, ContextPort, Manifest

log = logging.getLogger(__name__)

PREFIX = "/_api"
METHOD = "POST"


class RemoteCallFailed(MigrateError):
    def __init__(self, url: str, status: int | str, detail: str = ""):
        said = f": {detail}" if detail else ""
        super().__init__(f"POST {url} answered {status}{said}; expected 200")
        self.url = url
        self.status = status


class InvalidArguments(Exception):
    """Arguments of an API call that its function's hints do not admit."""


def call_path(provider: str, function: str) -> str:
    return f"{PREFIX}/{provider}/{function}"


def protocol_methods(protocol: type) -> list[str]:
    """The methods a port protocol declares, in the order it declares them."""
    return [
        name for name, value in vars(protocol).items()
        if inspect.isfunction(value) and not name.startswith("_")
    ]


def protocol_of(context: Context, port: ContextPort) -> type:
    if port.protocol is None:
        raise ManifestError(
            f"context {context.name}: the {port.name} port of {port.module}.Ports "
            "is not annotated with a protocol class of that module"
        )
    return port.protocol


def exposed(
    manifest: Manifest, provider: str, *, strict: bool = True
) -> dict[str, Callable[..., Any]]:
    """The functions of `provider`'s API that other contexts call through a
    port, by name: the surface both hosts of `provider` answer. A method the
    API does not define is a `ManifestError`, or with `strict=False` is left
    out and logged (a host still serves the calls it can)."""
    owner = manifest.context(provider)
    api = owner.load(owner.api)
    functions: dict[str, Callable[..., Any]] = {}
    for consumer in manifest.contexts.values():
        for port in consumer.ports_to(manifest.contexts):
            if port.provider != provider:
                continue

            for method in protocol_methods(protocol_of(consumer, port)):
                function = getattr(api, method, None)
                if not callable(function):
                    missing = ManifestError(
                        f"context {consumer.name}: port {port.name} calls "
                        f"{method}(), which {owner.api} does not define"
                    )
                    if strict:
                        raise missing
                    log.warning("%s; that call is not answered", missing)
                    continue

                _hints(function)
                functions[method] = function
    return dict(sorted(functions.items()))


def api_routes(manifest: Manifest, provider: str) -> list[tuple[str, str, None]]:
    """The router's routes for the calls `provider` answers."""
    return [(METHOD, call_path(provider, name), None)
            for name in exposed(manifest, provider)]


def answer(
    function: Callable[..., Any],
    ports: Any,
    raw_body: bytes,
    errors: Mapping[type[Exception], tuple[int, str]],
) -> Reply:
    """Run one API call on this host and turn its outcome into a reply."""
    table = {**COMMON_ERRORS, **errors}
    try:
        arguments = _arguments(function, parse_body(raw_body))
        result = function(ports.query(), **arguments)
    except MalformedBody as error:
        return Reply(400, {"error": "malformed_json", "message": str(error)})
    except InvalidArguments as error:
        return Reply(422, {"error": "invalid_arguments", "message": str(error)})
    except tuple(table) as error:
        status, code = next(v for k, v in table.items() if isinstance(error, k))
        return Reply(status, {"error": code, "message": str(error)})

    return Reply(200, {"result": encode(result, _hints(function).get("return"))})


def unknown_call(provider: str, function: str, known: list[str]) -> Reply:
    return Reply(404, {
        "error": "unknown_api_call",
        "message": f"{provider} answers no call {function!r}; it answers "
                   f"{', '.join(known) or 'none'}",
    })


def _arguments(function: Callable[..., Any], body: Mapping[str, Any]) -> dict:
    hints = _hints(function)
    parameters = list(inspect.signature(function).parameters.values())[1:]
    names = [p.name for p in parameters]
    unknown = sorted(set(body) - set(names))
    if unknown:
        raise InvalidArguments(
            f"{function.__name__}() takes {', '.join(names) or 'no arguments'}; "
            f"not {', '.join(unknown)}"
        )

    arguments = {}
    for parameter in parameters:
        if parameter.name not in body:
            if parameter.default is inspect.Parameter.empty:
                raise InvalidArguments(
                    f"{function.__name__}() needs argument '{parameter.name}'"
                )
            continue

        value = body[parameter.name]
        try:
            arguments[parameter.name] = decode(value, hints.get(parameter.name))
        except (TypeError, ValueError, InvalidOperation):
            raise InvalidArguments(
                f"argument '{parameter.name}' is {value!r}; it must be "
                f"{_hint_text(hints.get(parameter.name))}"
            ) from None
    return arguments


@functools.cache
def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    """The function's type hints, each checked to be one a call can carry."""
    hints = typing.get_type_hints(function)
    uow = next(iter(inspect.signature(function).parameters), None)
    for name, hint in hints.items():
        if name != uow and not _carried(hint):
            what = "its result" if name == "return" else f"argument '{name}'"
            raise ManifestError(
                f"{function.__module__}.{function.__name__}: {what} is "
                f"{_hint_text(hint)}, which an API call cannot carry; use int, "
                "float, str, bool, Decimal, None, or lists, tuples and dicts of "
                "them"
            )
    return hints


_SCALARS = (int, float, str, bool, Decimal, type(None))


def _carried(hint: Any) -> bool:
    if hint in _SCALARS or hint is Any:
        return True

    if typing.get_origin(hint) in (list, tuple, dict, typing.Union, types.UnionType):
        return all(a is Ellipsis or _carried(a) for a in typing.get_args(hint))

    return False


def _hint_text(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def encode(value: Any, hint: Any = None) -> Any:
    """A value as JSON carries it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(value: Any, hint: Any) -> Any:
    """A value from JSON back to what `hint` says it is."""
    if hint is None or hint is Any:
        return value

    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        chosen = [a for a in arguments if a is not type(None)]
        return decode(value, chosen[0]) if len(chosen) == 1 else value
    if origin is list:
        return [decode(v, arguments[0] if arguments else None) for v in _list(value)]
    if origin is tuple:
        items = _list(value)
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(decode(v, arguments[0]) for v in items)
        return tuple(decode(v, a) for v, a in zip(items, arguments, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{value!r} is not an object")
        key, item = arguments or (None, None)
        return {decode(k, key): decode(v, item) for k, v in value.items()}
    return _scalar(value, hint)


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise TypeError(f"{value!r} is not a list")
    return value


def _scalar(value: Any, hint: Any) -> Any:
    if hint is Decimal:
        if isinstance(value, bool | float):
            raise TypeError(f"{value!r} is not a decimal in text")
        return Decimal(str(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{value!r} is not a boolean")
        return value
    if hint is int:
        if isinstance(value, bool):
            raise TypeError(f"{value!r} is not an integer")
        if isinstance(value, str):
            return int(value)  # a dict key
        if not isinstance(value, int):
            raise TypeError(f"{value!r} is not an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"{value!r} is not a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"{value!r} is not text")
        return value
    if hint is type(None):
        if value is not None:
            raise TypeError(f"{value!r} is not null")
        return None
    return value


class ApiClient:
    """A port answered by another context's API through the router.

    Subclasses name the providing `context` and the `protocol`; each method
    of the protocol calls `self.call(method, **arguments)`.
    """

    context: str
    protocol: type

    def __init__(self, router_url: str, *, timeout: float = 5.0,
                 session: requests.Session | None = None):
        self.router_url = router_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def call(self, method: str, **arguments: Any) -> Any:
        hints = _port_hints(self.protocol, method)
        url = f"{self.router_url}{call_path(self.context, method)}"
        body = {name: encode(value, hints.get(name))
                for name, value in arguments.items()}
        try:
            reply = self.session.post(
                url, data=json.dumps(body),
                headers={"Content-Type": "application/json"}, timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise RemoteCallFailed(url, type(error).__name__) from error

        if reply.status_code != 200:
            raise RemoteCallFailed(url, reply.status_code, _detail(reply))

        try:
            return decode(reply.json()["result"], hints.get("return"))
        except (ValueError, KeyError, TypeError, InvalidOperation) as error:
            raise RemoteCallFailed(url, 200, f"an answer it cannot read ({error})") \
                from None


@functools.cache
def _port_hints(protocol: type, method: str) -> dict[str, Any]:
    return typing.get_type_hints(getattr(protocol, method))


def _detail(reply: requests.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:200]
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def client_class(context: Context, port: ContextPort) -> type[ApiClient]:
    """The client of one port, built at run time from its protocol."""
    protocol = protocol_of(context, port)
    namespace: dict[str, Any] = {"context": port.provider, "protocol": protocol}
    for method in protocol_methods(protocol):
        namespace[method] = _calling(method, inspect.signature(
            getattr(protocol, method)))
    return type(f"{protocol.__name__}Client", (ApiClient,), namespace)


def _calling(method: str, signature: inspect.Signature) -> Callable[..., Any]:
    def call(self: ApiClient, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        arguments = dict(bound.arguments)
        arguments.pop(next(iter(signature.parameters)))
        return self.call(method, **arguments)

    call.__name__ = method
    return call


def in_process_port(
    context: Context, port: ContextPort, provider: Context, query: Callable[[], Any]
) -> Any:
    """A port answered by a direct call of the provider's API function."""
    protocol = protocol_of(context, port)
    api = provider.load(provider.api)
    namespace: dict[str, Any] = {}
    for method in protocol_methods(protocol):
        function = getattr(api, method, None)
        if callable(function):
            namespace[method] = _direct(function, query)
        else:
            # Refused when called, not when wired: the host serves the rest.
            namespace[method] = _undefined(ManifestError(
                f"context {context.name}: port {port.name} calls {method}(), "
                f"which {provider.api} does not define"
            ))
    return type(f"InProcess{protocol.__name__}", (), namespace)()


def _undefined(error: ManifestError) -> Any:
    def call(self: object, *args: Any, **kwargs: Any) -> Any:
        raise error

    return call


def _direct(function: Callable[..., Any], query: Callable[[], Any]) -> Any:
    def call(self: object, *args: Any, **kwargs: Any) -> Any:
        return function(query(), *args, **kwargs)

    call.__name__ = function.__name__
    return call
