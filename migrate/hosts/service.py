"""A context hosted on its own: own database, events in and out over SQS/SNS.

`ServiceHost` is the part of an extracted service that does not depend on
Nameko: it serves the context's routes and the calls other contexts make
of its API, calls other contexts' APIs through the clients it is given,
applies the writer's events while
this host is a replica, handles the events the context consumes while it is
the writer, and keeps those that arrive before then (see `tables.deferred`).
The generated Nameko service is a thin shell around it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from migrate.hosts.calls import answer, exposed, unknown_call
from migrate.hosts.replica import CannotFollow, replica_of
from migrate.hosts.tables import deferred
from migrate.kernel.events import Envelope
from migrate.kernel.http import Headers, Reply, serve
from migrate.kernel.sql import FENCED, REPLICA, WRITER, create_engine
from migrate.kernel.uow import AlreadyHandled, UnitOfWork, role_of, set_role
from migrate.manifest import Context, Manifest
from migrate.manifest import load as load_manifest

log = logging.getLogger(__name__)

ORIGIN = "service"
ROLES = (WRITER, FENCED, REPLICA)


class ContextPorts:
    """The context's units of work, and its ports to other contexts' APIs."""

    def __init__(self, host: ServiceHost, clients: Mapping[str, Any]):
        self.command = lambda: host.unit_of_work()
        self.query = lambda: host.unit_of_work(command=False)
        self.replica = lambda: host.unit_of_work(command=False)
        for name, client in clients.items():
            setattr(self, name, client)


class ServiceHost:
    def __init__(
        self,
        context: str,
        database_url: str,
        manifest: Manifest | None = None,
        clients: Mapping[str, Any] | None = None,
    ):
        """`clients` answer the context's ports to other contexts' APIs
        (the generated `<context>_clients.py`), by port name."""
        self.manifest = manifest or load_manifest()
        self.context: Context = self.manifest.context(context)
        self.engine = create_engine(database_url)
        # The service's own unit of work when its tables differ in shape.
        self._unit = self.context.load(self.context.service_unit)
        self._aggregates = self.context.aggregates_built()
        self._replica = replica_of(self.context) if self.context.follows else None
        self.routes = {route.endpoint: route for route in self.context.route_list}
        self.errors = self.context.route_errors
        self.ports = ContextPorts(self, clients or {})
        self.calls = exposed(self.manifest, context)
        self._handlers = {
            (event_type.context, event_type.type_name()): (event_type, handler)
            for event_type, handler in self.context.event_handlers.items()
        }

    def unit_of_work(
        self, *, command: bool = True, claim: tuple[str, str] | None = None
    ) -> Any:
        """The context's own unit of work (its protocol is the context's)."""
        unit: UnitOfWork = self._unit(
            self.engine, ORIGIN, command=command, claim=claim,
            aggregates=self._aggregates,
        )
        return unit

    def serve(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        body: bytes,
        headers: Headers,
    ) -> Reply:
        return serve(
            self.routes[endpoint], self.ports, params, body, headers, self.errors
        )

    def answer(self, function: str, body: bytes) -> Reply:
        """Answer a call of the context's API made through another's port."""
        if function not in self.calls:
            return unknown_call(self.context.name, function, list(self.calls))

        return answer(self.calls[function], self.ports, body, self.errors)

    @property
    def role(self) -> str:
        with self.engine.connect() as db:
            return role_of(db, self.context.name)

    def follow(self, envelope: Envelope) -> bool:
        """Apply one of the context's own events, published by another host."""
        if self._replica is None:
            raise CannotFollow(
                f"context {self.context.name} declares neither a replica module "
                "nor aggregates"
            )

        consumer = f"{self.context.name}.replica"
        uow = self.unit_of_work(command=False, claim=(consumer, envelope.event_id))
        try:
            return self._replica(envelope, uow)
        except AlreadyHandled:
            return False

    def consume(self, envelope: Envelope) -> None:
        """Handle an event the context consumes, or keep it until this host writes."""
        key = (envelope.context, envelope.event_type)
        if key not in self._handlers:
            log.warning(
                "%s consumes no %s; event %s ignored",
                self.context.name,
                envelope.event_type,
                envelope.event_id,
            )
            return

        with self.engine.begin() as db:
            # Read under the same lock a promotion takes, so an event is
            # either kept before the promotion or handled after it.
            if role_of(db, self.context.name, lock=True) != WRITER:
                exists = db.execute(
                    sa.select(deferred.c.event_id).where(
                        deferred.c.event_id == envelope.event_id
                    )
                ).first()
                if not exists:
                    db.execute(
                        deferred.insert().values(
                            consumer=self._consumer(key),
                            event_id=envelope.event_id,
                            payload=envelope.to_json(),
                        )
                    )
                return

        self._handle(key, envelope)

    def change_role(self, role: str) -> int:
        """Set this host's role; becoming the writer replays kept events."""
        if role not in ROLES:
            raise ValueError(f"role {role!r}: roles are {', '.join(ROLES)}")

        with self.engine.begin() as db:
            set_role(db, self.context.name, role)
        return self.replay_deferred() if role == WRITER else 0

    def replay_deferred(self) -> int:
        with self.engine.connect() as db:
            kept = db.execute(sa.select(deferred).order_by(deferred.c.position)).all()
        for row in kept:
            envelope = Envelope.from_json(row.payload)
            self._handle((envelope.context, envelope.event_type), envelope)
            with self.engine.begin() as db:
                db.execute(deferred.delete().where(deferred.c.position == row.position))
        if kept:
            log.info("%s replayed %s kept events", self.context.name, len(kept))
        return len(kept)

    def _handle(self, key: tuple[str, str], envelope: Envelope) -> None:
        event_type, handler = self._handlers[key]
        uow = self.unit_of_work(claim=(self._consumer(key), envelope.event_id))
        try:
            handler(event_type.from_data(envelope.data), uow)
        except AlreadyHandled:
            pass

    def _consumer(self, key: tuple[str, str]) -> str:
        return f"{self.context.name}.{self._handlers[key][1].__name__}"
