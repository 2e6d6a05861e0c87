"""Routes described once, served by any host.

A context lists its routes as `Route` values whose views take the host's
ports and a `Request` and return a `Reply`. The monolith serves them through
Flask, an extracted service through Nameko's `@http`; neither host holds a
second copy of a view. Rules use Werkzeug's syntax, which both understand.
Errors become replies through one table per context (exception type to
status and stable error code).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from migrate.kernel.money import MoneyError
from migrate.kernel.uow import HostNotWriter

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class InvalidRequest(Exception):
    """A request body that breaks a rule of the route (status 422)."""


class MalformedBody(Exception):
    """A request body that is not a JSON object (status 400)."""


class Headers(Protocol):
    """What a view reads of the request's headers (any host's header type)."""

    def get(self, key: str) -> str | None: ...


@dataclasses.dataclass(frozen=True)
class Request:
    params: Mapping[str, Any]
    body: Mapping[str, Any]
    headers: Headers


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    rule: str
    view: Callable[[Any, Request], Reply]
    bucket_key: str | None = None

    @property
    def writes(self) -> bool:
        return self.method not in READ_METHODS

    @property
    def endpoint(self) -> str:
        return self.view.__name__


COMMON_ERRORS: dict[type[Exception], tuple[int, str]] = {
    MalformedBody: (400, "malformed_json"),
    InvalidRequest: (422, "invalid_request"),
    MoneyError: (422, "invalid_amount"),
    HostNotWriter: (503, "context_not_writer"),
}


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}

    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedBody(f"request body is not JSON: {error}") from None
    except RecursionError:
        raise MalformedBody("request body nests deeper than JSON allows here") from None

    if not isinstance(body, dict):
        raise MalformedBody(
            f"request body must be a JSON object, not {type(body).__name__}"
        )

    return body


def serve(
    route: Route,
    ports: Any,
    params: Mapping[str, Any],
    raw_body: bytes,
    headers: Headers,
    errors: Mapping[type[Exception], tuple[int, str]],
) -> Reply:
    """Run a view and turn a known failure into its reply; others propagate."""
    table = {**COMMON_ERRORS, **errors}
    too_big = next(
        (
            k
            for k, v in params.items()
            if isinstance(v, int) and not -(2**63) <= v < 2**63
        ),
        None,
    )
    if too_big is not None:
        # No row has such an id: every id column is a 64-bit integer.
        return Reply(
            404,
            {
                "error": "not_found",
                "message": f"{too_big} {params[too_big]} exists nowhere",
            },
        )

    try:
        request = Request(params, parse_body(raw_body) if route.writes else {}, headers)
        return route.view(ports, request)
    except tuple(table) as error:
        status, code = next(v for k, v in table.items() if isinstance(error, k))
        reply_headers = {}
        if isinstance(error, HostNotWriter):
            # The router re-resolves the writer and retries: the command was
            # refused before it changed anything.
            reply_headers = {"X-Migrate-Not-Writer": error.context, "Retry-After": "1"}
        return Reply(status, {"error": code, "message": str(error)}, reply_headers)


def require(body: Mapping[str, Any], field: str, kind: type | tuple[type, ...]) -> Any:
    if field not in body:
        raise InvalidRequest(f"field '{field}' is required")

    value = body[field]
    if isinstance(value, bool) or not isinstance(value, kind):
        names = (
            kind.__name__
            if isinstance(kind, type)
            else " or ".join(k.__name__ for k in kind)
        )
        raise InvalidRequest(f"field '{field}' is {value!r}; it must be {names}")

    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise InvalidRequest(f"field '{field}' is {value}; integers here are 64-bit")

    return value
