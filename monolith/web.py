"""The monolith's HTTP face: Flask serving every context's routes.

Routes come from the contexts themselves (see `migrate.kernel.http`); this
module only adapts Flask's request and response to them.
`/_api/<context>/<function>` answers the calls other contexts make of a
context's API through a port (see `migrate.hosts.calls`). `/_migrate/...`
is the kit's control surface on this host: health, and the role this host
plays for a context (the fence of a write flip). `GET /metrics` is for
Prometheus: requests and latency per context and route, and each context's
outbox backlog, read when scraped.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from migrate.hosts.calls import PREFIX, answer, exposed, unknown_call
from migrate.kernel.http import Reply, serve
from migrate.kernel.sql import FENCED, REPLICA, WRITER
from migrate.kernel.uow import role_of, set_role
from migrate.observe import logs, metrics, tracing
from migrate.observe.readings import outbox_backlog
from monolith.host import Monolith

ROLES = (WRITER, FENCED, REPLICA)


def create_app(host: Monolith) -> Flask:
    app = Flask("monolith")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    measured = _measured(host)

    for name, context in host.hosted.items():
        ports = host.ports(name)
        errors = context.route_errors
        for route in context.route_list:
            app.add_url_rule(
                route.rule,
                endpoint=f"{name}.{route.endpoint}",
                view_func=_view(name, route, ports, errors, measured),
                methods=[route.method],
            )
    calls = {name: exposed(host.manifest, name, strict=False) for name in host.hosted}

    @app.post(f"{PREFIX}/<context>/<function>")
    def api_call(context: str, function: str) -> Response:
        answered = calls.get(context, {})
        if function not in answered:
            return _json(unknown_call(context, function, list(answered)))

        tracing.annotate(context=context, route=f"POST {PREFIX}/{context}/{function}")
        with logs.bind(context=context, route=function, backend="monolith"):
            reply = answer(
                answered[function],
                host.ports(context),
                request.get_data(),
                host.manifest.context(context).route_errors,
            )
        return _json(reply)

    # A segment per request, continuing the router's trace (when tracing is on).
    tracing.instrument_flask(app)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        # Unknown paths and methods answer in JSON too, with a stable code.
        code = (error.name or "error").lower().replace(" ", "_")
        return _json(
            Reply(error.code or 500, {"error": code, "message": error.description})
        )

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        app.logger.exception("unexpected failure")
        return _json(
            Reply(
                500,
                {
                    "error": "internal_error",
                    "message": f"{type(error).__name__}; see the log",
                },
            )
        )

    @app.get("/_migrate/health")
    def health() -> Response:
        return _json(Reply(200, {"host": "monolith", "status": "ok"}))

    @app.get("/metrics")
    def scrape() -> Response:
        return Response(measured.exposition(), mimetype=None,
                        content_type=metrics.CONTENT_TYPE)

    @app.get("/_migrate/contexts/<context>/role")
    def get_role(context: str) -> Response:
        with host.engine.connect() as db:
            return _json(Reply(200, {"context": context, "role": role_of(db, context)}))

    @app.put("/_migrate/contexts/<context>/role")
    def put_role(context: str) -> Response:
        role = (request.get_json(silent=True) or {}).get("role")
        if context not in host.hosted:
            return _json(
                Reply(
                    404,
                    {
                        "error": "unknown_context",
                        "message": f"there is no context {context!r}",
                    },
                )
            )
        if role not in ROLES:
            return _json(
                Reply(
                    422,
                    {
                        "error": "invalid_role",
                        "message": f"role {role!r}: roles are {', '.join(ROLES)}",
                    },
                )
            )
        # The role row is read with a shared lock by every command, so this
        # update waits for commands already running and fences later ones.
        with host.engine.begin() as db:
            set_role(db, context, role)
        return _json(Reply(200, {"context": context, "role": role}))

    return app


def _measured(host: Monolith) -> metrics.Instruments:
    """The app's request metrics, and the outbox backlog read at scrape."""
    measured = metrics.Instruments()
    contexts = list(host.hosted)

    def backlog() -> Any:
        found = metrics.family("migrate_outbox_backlog_events")
        for context, count in outbox_backlog(host.engine, contexts).items():
            found.add_metric(["monolith", context], count)
        yield found

    measured.registry.register(metrics.Reading(backlog))
    metrics.emit_also(measured.registry)
    return measured


def _view(
    context: str, route: Any, ports: Any, errors: Any,
    measured: metrics.Instruments,
) -> Any:
    label = f"{route.method} {route.rule}"
    answered = measured("migrate_http_requests_total")
    duration = measured("migrate_http_request_duration_seconds").labels(
        context, label
    )

    def view(**params: Any) -> Response:
        tracing.annotate(context=context, route=label)
        started = time.perf_counter()
        status = 500
        try:
            with logs.bind(context=context, route=label, backend="monolith"):
                reply = serve(
                    route, ports, params, request.get_data(), request.headers,
                    errors,
                )
            status = reply.status
        finally:
            duration.observe(time.perf_counter() - started)
            answered.labels(context, label, str(status)).inc()
        return _json(reply)

    view.__name__ = route.endpoint
    return view


def _json(reply: Reply) -> Response:
    return Response(
        json.dumps(reply.body),
        status=reply.status,
        headers=dict(reply.headers),
        mimetype="application/json",
    )
