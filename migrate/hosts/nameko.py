"""Nameko glue for an extracted context: dependency providers and replies.

The generated service declares one `@http` entrypoint per route of the
context, one per call of its API that other contexts make, and one
`consume` entrypoint per queue; each hands its input to the `ServiceHost`
this provider builds from the service's configuration (`DATABASE_URL`, and
`ROUTER_URL` when the context calls other contexts through the router).
`Traced` gives every worker an X-Ray segment; `Measured` counts them for
Prometheus and answers the service's `GET /metrics`.
Nothing here knows a particular context.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Request, Response

from migrate.hosts.calls import ApiClient
from migrate.hosts.service import ROLES, ServiceHost
from migrate.kernel.http import Reply
from migrate.kernel.sql import WRITER
from migrate.kernel.uow import AlreadyHandled
from migrate.manifest import load as load_manifest
from migrate.messaging.errors import SettingInvalid
from migrate.messaging.nameko_sqs import SqsConsumer
from migrate.observe import metrics, process_name, tracing

log = logging.getLogger(__name__)


class Traced(DependencyProvider):
    """An X-Ray segment for every worker of the service.

    A worker of an `@http` entrypoint continues the trace of the request's
    `X-Amzn-Trace-Id`; a worker of a `consume` entrypoint continues the
    trace of the message, whose header the SQS entrypoint put in the
    worker's context data (a greenthread does not inherit another's X-Ray
    context, so the header is handed over explicitly). Tracing is set up
    here, once per process, from the environment (see
    `migrate.observe.tracing`).
    """

    def setup(self) -> None:
        self.name = process_name(f"{self.container.service_name}-service")
        tracing.configure(self.name)

    def worker_setup(self, worker_ctx: Any) -> None:
        if not tracing.enabled():
            return

        entrypoint = worker_ctx.entrypoint.method_name
        header = worker_ctx.data.get("trace_header")
        request = worker_ctx.args[0] if worker_ctx.args else None
        if isinstance(request, Request):
            header = request.headers.get(tracing.HEADER)
        segment = tracing.begin_segment(
            self.name, header, context=self.container.service_name,
            entrypoint=entrypoint,
        )
        if isinstance(request, Request) and segment is not None:
            segment.put_http_meta("method", request.method)
            segment.put_http_meta("url", request.url)

    def worker_result(
        self, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> None:
        if not tracing.enabled():
            return

        status = result.status_code if isinstance(result, Response) else None
        error = exc_info[1] if exc_info and not _duplicate(exc_info) else None
        tracing.end_segment(status, error)


class Measured(DependencyProvider):
    """Prometheus metrics of every worker of the service.

    An `@http` worker counts as a request of its route (`METHOD rule`, as
    the monolith labels it) with its status code, 500 when it raised; a
    `consume` worker as a message of its queue: handled, duplicate (the
    inbox knew its event id) or failed. The service's own `/metrics`
    entrypoint is not counted. The dependency answers that entrypoint.
    """

    def setup(self) -> None:
        metrics.configure(process_name(f"{self.container.service_name}-service"))
        self.instruments = metrics.Instruments()
        metrics.emit_also(self.instruments.registry)
        self._started: weakref.WeakKeyDictionary[Any, float] = (
            weakref.WeakKeyDictionary()
        )
        # Every series from zero, so a rate reads 0 rather than nothing.
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, SqsConsumer):
                for outcome in ("handled", "duplicate", "failed"):
                    self.instruments("migrate_messages_total").labels(
                        entrypoint.queue_name, outcome
                    )

    def get_dependency(self, worker_ctx: Any) -> Measured:
        return self

    def response(self) -> Response:
        """`GET /metrics`: the service's metrics and its process's."""
        return Response(self.instruments.exposition(),
                        content_type=metrics.CONTENT_TYPE)

    def worker_setup(self, worker_ctx: Any) -> None:
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(
        self, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> None:
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return

        seconds = time.perf_counter() - started
        entrypoint = worker_ctx.entrypoint
        measure = self.instruments
        if isinstance(entrypoint, HttpRequestHandler):
            if entrypoint.method_name == "migrate_metrics":
                return
            route = f"{entrypoint.method} {entrypoint.url}"
            context = self.container.service_name
            status = result.status_code if isinstance(result, Response) else 500
            measure("migrate_http_requests_total").labels(
                context, route, str(status)
            ).inc()
            measure("migrate_http_request_duration_seconds").labels(
                context, route
            ).observe(seconds)
        elif isinstance(entrypoint, SqsConsumer):
            queue = entrypoint.queue_name
            if exc_info is None:
                outcome = "handled"
            else:
                outcome = "duplicate" if _duplicate(exc_info) else "failed"
            measure("migrate_messages_total").labels(queue, outcome).inc()
            measure("migrate_message_duration_seconds").labels(queue).observe(
                seconds
            )


def _duplicate(exc_info: Any) -> bool:
    return issubclass(exc_info[0], AlreadyHandled)


class ContextHost(DependencyProvider):
    def __init__(
        self, context: str, clients: Mapping[str, type[ApiClient]] | None = None
    ):
        """`clients` are the generated client classes of the context's ports.
        The manifest is the configuration's `MANIFEST` (relative to the
        service's folder, where it runs)."""
        self.context = context
        self.clients = dict(clients or {})

    def setup(self) -> None:
        # Before the engine exists, so that its statements are traced.
        tracing.configure(process_name(f"{self.container.service_name}-service"))
        config = self.container.config
        router = config.get("ROUTER_URL") or ""
        if self.clients and not router:
            raise SettingInvalid(
                "ROUTER_URL", router,
                f"{self.context} calls {', '.join(self.clients)} through the router",
            )
        named = config.get("MANIFEST")
        manifest = load_manifest(Path(named).resolve()) if named else None
        self.host = ServiceHost(
            self.context,
            config["DATABASE_URL"],
            manifest,
            {name: client(router) for name, client in self.clients.items()},
        )

    def start(self) -> None:
        # A service that died half way through a promotion finishes it here.
        if self.host.role == WRITER:
            self.host.replay_deferred()

    def get_dependency(self, worker_ctx: Any) -> ServiceHost:
        return self.host


def respond(reply: Reply) -> Response:
    return Response(
        json.dumps(reply.body),
        status=reply.status,
        headers=dict(reply.headers),
        mimetype="application/json",
    )


def serve_route(
    host: ServiceHost, endpoint: str, request: Request, params: dict
) -> Response:
    return respond(host.serve(endpoint, params, request.get_data(), request.headers))


def answer_call(host: ServiceHost, function: str, request: Request) -> Response:
    return respond(host.answer(function, request.get_data()))


def health(host: ServiceHost) -> Response:
    body = {"host": "service", "context": host.context.name, "role": host.role}
    return respond(Reply(200, body))


def change_role(host: ServiceHost, request: Request) -> Response:
    role = (request.get_json(silent=True) or {}).get("role")
    if role not in ROLES:
        return respond(
            Reply(
                422,
                {
                    "error": "invalid_role",
                    "message": f"role {role!r}: roles are {', '.join(ROLES)}",
                },
            )
        )

    replayed = host.change_role(role)
    log.info(
        "%s is now %s here (%s kept events replayed)", host.context.name, role, replayed
    )
    return respond(
        Reply(200, {"context": host.context.name, "role": role, "replayed": replayed})
    )
