"""The provider side of a verification: states and messages, beside a host.

The Pact verifier replays HTTP interactions against the host itself (the
monolith, or a service under `nameko run`). What a replay needs besides, it
asks this process for, over HTTP on loopback:

    POST /_contracts/<provider>/state     {"state", "params", "action"}
        `setup` puts the provider in the state through a `Stage`;
        `teardown` puts back every role a state changed.
    POST /_contracts/<provider>/message   {"description", "providerStates"}
        answers with the last event the provider appended to its outbox
        since the interaction's first state: the envelope JSON as the body,
        its SNS message attributes (base64 JSON) in `Pact-Message-Metadata`.
    GET  /_contracts/<provider>/report    the attributes of each message
        answered so far (keyed by description and states), and the error of
        each state that failed.
    GET  /_contracts/health

A failure answers 400 with the reason: the Pact verifier retries a 5xx for
minutes, while a state that failed once fails again.

It runs in its own process so that everything provider-side (states,
envelopes, attributes) runs the code being verified, which may be a copy of
the repository. It prepares the host's database first, as `migrate up` and
`migrate extract` do: the monolith's schema, or the service's own schema
with the service as a replica. One request at a time: states never race.

    python -m migrate.contracts.harness --host monolith --database URL \\
        --control http://127.0.0.1:PORT --port N
    python -m migrate.contracts.harness --host service --context billing \\
        --database URL --control URL --migrations DIR \\
        --states contracts.states.billing --port N
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
import traceback
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from migrate.contracts.errors import ContractError, NothingPublished
from migrate.contracts.stages import MonolithStage, ServiceStage, Stage
from migrate.contracts.states import MONOLITH, SERVICE, ProviderStates, states_of
from migrate.kernel.events import Envelope

log = logging.getLogger(__name__)

PREFIX = "/_contracts/"
METADATA_HEADER = "Pact-Message-Metadata"


def interaction_key(description: str, states: Sequence[str]) -> str:
    """How the verifier and the harness name one message interaction."""
    return f"{description} | {' & '.join(states)}"


class Harness:
    def __init__(self, stage: Stage, states_module: str | None = None):
        self.stage = stage
        self.states_module = states_module
        self._states: dict[str, ProviderStates] = {}
        self._marks: dict[str, int] = {}
        self.published: dict[str, dict[str, dict[str, Any]]] = {}
        self.failed_states: dict[str, dict[str, str]] = {}

    def states(self, provider: str) -> ProviderStates:
        if provider not in self._states:
            self._states[provider] = states_of(provider, self.states_module)
        return self._states[provider]

    def change_state(self, provider: str, request: dict[str, Any]) -> None:
        name = request.get("state") or ""
        if request.get("action") == "teardown":
            self._marks.pop(provider, None)
            self.stage.restore()
            return

        if provider not in self._marks:
            # Messages answer with what the provider published from here on.
            self._marks[provider] = self.stage.mark(provider)
        if not name:
            return

        try:
            self.states(provider).set(self.stage, name, request.get("params") or {})
        except Exception as error:
            reason = str(error) if isinstance(error, ContractError) \
                else f"{type(error).__name__}: {error}"
            self.failed_states.setdefault(provider, {})[name] = reason
            raise

    def report(self, provider: str) -> dict[str, Any]:
        return {"published": self.published.get(provider, {}),
                "failed_states": self.failed_states.get(provider, {})}

    def message(self, provider: str, request: dict[str, Any]) -> Envelope:
        description = str(request.get("description", ""))
        states = [s.get("name", "") for s in request.get("providerStates") or []]
        key = interaction_key(description, states)
        published = self.stage.published_since(provider, self._marks.get(provider, 0))
        if not published:
            self.published.setdefault(provider, {})[key] = {
                "error": str(NothingPublished(provider, description, states))}
            raise NothingPublished(provider, description, states)

        envelope = published[-1]
        self.published.setdefault(provider, {})[key] = {
            "metadata": attributes_of(envelope), "event_type": envelope.event_type}
        return envelope


def attributes_of(envelope: Envelope) -> dict[str, str]:
    """The attributes SNS carries with the envelope, as its publisher sets them."""
    from migrate.messaging.publisher import message_attributes

    return {name: value["StringValue"]
            for name, value in message_attributes(envelope).items()}


def _handler_class(harness: Harness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

        def do_GET(self) -> None:
            if self.path == f"{PREFIX}health":
                self._reply(200, {"status": "ok"})
                return

            provider, action = self._route()
            if action != "report":
                self._reply(404, {"error": f"no GET {self.path}"})
                return

            self._reply(200, harness.report(provider))

        def do_POST(self) -> None:
            provider, action = self._route()
            length = int(self.headers.get("Content-Length") or 0)
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
                if action == "state":
                    harness.change_state(provider, request)
                    self._reply(200, {})
                elif action == "message":
                    self._message(harness.message(provider, request))
                else:
                    self._reply(404, {"error": f"no POST {self.path}"})
            except ContractError as error:
                self._reply(400, {"error": str(error)})
            # Whatever a state handler raised, the verifier must hear of it
            # as this interaction's failure, not as a dropped connection.
            except Exception as error:  # noqa: BLE001
                log.error("%s failed:\n%s", self.path, traceback.format_exc())
                self._reply(400, {"error": f"{type(error).__name__}: {error}"})

        def _route(self) -> tuple[str, str]:
            parts = self.path[len(PREFIX):].split("/") if self.path.startswith(
                PREFIX) else []
            return (parts[0], parts[1]) if len(parts) == 2 else ("", "")

        def _message(self, envelope: Envelope) -> None:
            body = envelope.to_json().encode()
            metadata = json.dumps(attributes_of(envelope)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header(METADATA_HEADER, base64.b64encode(metadata).decode())
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _reply(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


def prepare(arguments: argparse.Namespace) -> Stage:
    from migrate.kernel.sql import REPLICA, create_engine
    from migrate.kernel.uow import set_role
    from migrate.schema import upgrade

    if arguments.host == MONOLITH:
        upgrade(arguments.database)
        return MonolithStage(arguments.database, arguments.control)

    upgrade(arguments.database, Path(arguments.migrations))
    with create_engine(arguments.database).begin() as db:
        set_role(db, arguments.context, REPLICA)
    return ServiceStage(arguments.context, arguments.database, arguments.control)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate.contracts.harness")
    parser.add_argument("--host", choices=(MONOLITH, SERVICE), required=True)
    parser.add_argument("--context", help="the context a service hosts")
    parser.add_argument("--database", required=True, help="the host's SQLAlchemy URL")
    parser.add_argument("--control", required=True, help="the host's base URL")
    parser.add_argument("--migrations", help="a service's Alembic folder")
    parser.add_argument("--states", help="a service's provider states module")
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args(argv)
    if arguments.host == SERVICE and not (arguments.context and arguments.migrations):
        parser.error("a service host needs --context and --migrations")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    server = HTTPServer(("127.0.0.1", arguments.port),
                        _handler_class(Harness(prepare(arguments), arguments.states)))
    log.info("harness for the %s listening on port %s", arguments.host,
             server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
