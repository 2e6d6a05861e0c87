"""Nameko glue for an extracted context: a dependency provider and replies.

The generated service declares one `@http` entrypoint per route of the
context and one `consume` entrypoint per queue; each hands its input to the
`ServiceHost` this provider builds from the service's configuration
(`DATABASE_URL`). Nothing here knows a particular context.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request, Response

from migrate.hosts.service import ROLES, ServiceHost
from migrate.kernel.http import Reply
from migrate.kernel.sql import WRITER

log = logging.getLogger(__name__)


class ContextHost(DependencyProvider):
    def __init__(self, context: str):
        self.context = context

    def setup(self) -> None:
        self.host = ServiceHost(self.context, self.container.config["DATABASE_URL"])

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
