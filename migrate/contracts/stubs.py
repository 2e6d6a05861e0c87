"""Stand-ins for the contexts a service calls, answering from its contracts.

A service whose context has ports onto other contexts (ordering asks
catalog for prices, customers whether a customer is registered and shipping
whether a shipper is) calls them through the router. A verification runs
neither the router nor those contexts, so the service's calls go to a stub
instead: it answers a request with the response of the interaction, among
the contracts the service's context holds as a consumer, whose method, path
and JSON body are the request's. The answers are as faithful as the
providers are to those contracts, which their own verifications check; the
provider states the stub's answers stand for are the contracts' own
(ordering's contract with customers has ALFKI registered, so ALFKI is
registered).

A request no interaction describes is answered 501, naming the request, so
the service's call fails the way a call of a broken provider would and the
verification reports the interaction that made it. The stub also keeps a
verification from ever calling a running system's router.

It reads V4 HTTP interactions (the kit's files), with JSON bodies or none.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from migrate.contracts.pacts import HTTP, Contract, Interaction

log = logging.getLogger(__name__)

# What the generated service configuration reads its router's URL from.
ROUTER_VARIABLE = "MIGRATE_ROUTER_URL"


def held_by(consumer: str, providers: Iterable[str],
            contracts: Iterable[Contract]) -> list[Contract]:
    """The contracts `consumer` holds with `providers` over HTTP."""
    wanted = set(providers)
    return [c for c in contracts
            if c.consumer == consumer and c.provider in wanted
            and any(i.kind == HTTP for i in c.interactions)]


def answer(contracts: Iterable[Contract], method: str, path: str,
           body: Any) -> Interaction | None:
    """The interaction whose request is this one, if a contract has one."""
    for contract in contracts:
        for interaction in contract.interactions:
            request = interaction.request
            if (interaction.kind == HTTP
                    and str(request.get("method", "")).upper() == method
                    and request.get("path") == path
                    and _content(request.get("body")) == body):
                return interaction
    return None


@contextlib.contextmanager
def serving(contracts: list[Contract]) -> Iterator[str]:
    """A stub answering from `contracts` on loopback; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(contracts))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _content(body: Any) -> Any:
    # A V4 body wraps its content with its type; a missing body is None.
    if isinstance(body, Mapping) and "content" in body and "contentType" in body:
        return body["content"]
    return body


def _handler_class(contracts: list[Contract]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                body = raw.decode(errors="replace")
            found = answer(contracts, self.command, self.path, body)
            if found is None:
                names = ", ".join(c.name for c in contracts) or "no contract"
                self._reply(501, {}, {
                    "error": "not_in_contract",
                    "message": f"{self.command} {self.path} with body {body!r} "
                               f"is in none of the interactions of {names}",
                })
                return

            response = found.response
            headers = {name: ", ".join(v) if isinstance(v, list) else str(v)
                       for name, v in (response.get("headers") or {}).items()}
            self._reply(int(response["status"]), headers,
                        _content(response.get("body")))

        def _reply(self, status: int, headers: Mapping[str, str], body: Any) -> None:
            raw = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            if body is not None and not any(n.lower() == "content-type"
                                            for n in headers):
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler
