"""The hosts a provider is verified on, as its state handlers see them.

A stage runs beside a running host, on the host's database, with the code
under verification, and offers state handlers what a context offers anyone,
the same on either host, so a context's states are written once:

- `ports(context)`: the context's units of work (and, on the monolith,
  ordering's ports to catalog, customers and shipping), for its handlers
  and API;
- `deliver(context, event)`: the context handles an event it consumes, as
  its writer does (claimed by event id, through its own handler). A host
  that does not write the context at that moment is made its writer for
  the delivery, through the control API, and given its role back;
- `writing(context)`: the same for any block of commands;
- `set_role(context, role)`: through the host's own control API
  (`PUT /_migrate/contexts/<context>/role`), as a write flip does, and
  `written_elsewhere(context)`: the role a host takes while another host
  writes the context (the monolith is fenced; a service is a replica);
- on a service, also `follow(event)` (the context's replica applies one of
  its own events, as from the monolith's outbox) and `consume(event)` (as
  from its queue: kept until the service writes).

`published_since(context, mark)` reads the events the context appended to
its outbox after `mark`: exactly what its relay would publish next, less the
row images of declared aggregates (the kit's own replication, which no
consumer holds a contract on). A stage
puts every role it changed back with `restore`, after each interaction.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migrate.contracts.states import MONOLITH, SERVICE
from migrate.kernel.events import Envelope, Event
from migrate.kernel.images import IMAGE_EVENT
from migrate.kernel.sql import FENCED, REPLICA, WRITER
from migrate.kernel.uow import queue_tables, role_of

log = logging.getLogger(__name__)

# Events a stage hands a service come from the monolith, as in production
# before the service writes; the filter policies route them by origin.
FROM_MONOLITH = "monolith"


class _Stage:
    host: str
    default_role: str
    # The role this host takes while another host writes a context.
    elsewhere_role: str

    def __init__(self, engine: Engine, control_url: str):
        self.engine = engine
        self.control_url = control_url.rstrip("/")
        self._changed: set[str] = set()

    def set_role(self, context: str, role: str) -> None:
        reply = requests.put(f"{self.control_url}/_migrate/contexts/{context}/role",
                             json={"role": role}, timeout=30)
        if reply.status_code != 200:
            raise RuntimeError(f"the {self.host} refused role {role} for {context}: "
                               f"{reply.status_code} {reply.text}")

        self._changed.add(context)

    def written_elsewhere(self, context: str) -> None:
        self.set_role(context, self.elsewhere_role)

    def role(self, context: str) -> str:
        with self.engine.connect() as db:
            return role_of(db, context)

    @contextlib.contextmanager
    def writing(self, context: str) -> Iterator[None]:
        """This host writes `context` for the block, then has its role back."""
        before = self.role(context)
        if before == WRITER:
            yield
            return

        self.set_role(context, WRITER)
        try:
            yield
        finally:
            self.set_role(context, before)

    def deliver(self, context: str, event: Event) -> None:
        with self.writing(context):
            self._handle(context, Envelope.wrap(event, FROM_MONOLITH))

    def _handle(self, context: str, envelope: Envelope) -> None:
        raise NotImplementedError

    def restore(self) -> None:
        for context in sorted(self._changed):
            self.set_role(context, self.default_role)
        self._changed.clear()

    def mark(self, context: str) -> int:
        outbox, _ = queue_tables(context)
        with self.engine.connect() as db:
            return int(db.execute(sa.select(sa.func.max(outbox.c.position)))
                       .scalar() or 0)

    def published_since(self, context: str, mark: int) -> list[Envelope]:
        outbox, _ = queue_tables(context)
        query = (sa.select(outbox.c.payload)
                 .where(outbox.c.position > mark, outbox.c.event_type != IMAGE_EVENT)
                 .order_by(outbox.c.position))
        with self.engine.connect() as db:
            return [Envelope.from_json(payload) for payload in db.scalars(query)]


class MonolithStage(_Stage):
    host = MONOLITH
    default_role = WRITER
    elsewhere_role = FENCED

    def __init__(self, database_url: str, control_url: str):
        from monolith.host import Monolith

        self.monolith = Monolith(database_url)
        super().__init__(self.monolith.engine, control_url)

    def ports(self, context: str) -> Any:
        return self.monolith.ports(context)

    def _handle(self, context: str, envelope: Envelope) -> None:
        self.monolith.handle(context, envelope)


class ServiceStage(_Stage):
    host = SERVICE
    default_role = REPLICA
    elsewhere_role = REPLICA

    def __init__(self, context: str, database_url: str, control_url: str):
        from migrate.hosts.service import ServiceHost

        self.service = ServiceHost(context, database_url)
        self.context = context
        super().__init__(self.service.engine, control_url)

    def ports(self, context: str) -> Any:
        if context != self.context:
            raise RuntimeError(f"the {self.context} service hosts no {context}; "
                               "reach other contexts through their own API")

        return self.service.ports

    def follow(self, event: Event) -> bool:
        return self.service.follow(Envelope.wrap(event, FROM_MONOLITH))

    def consume(self, event: Event) -> None:
        self.service.consume(Envelope.wrap(event, FROM_MONOLITH))

    def _handle(self, context: str, envelope: Envelope) -> None:
        if context != self.context:
            raise RuntimeError(f"the {self.context} service hosts no {context}")

        consumed = {(t.context, t.type_name())
                    for t in self.service.context.event_handlers}
        if (envelope.context, envelope.event_type) not in consumed:
            raise ValueError(
                f"{context} consumes no {envelope.context} {envelope.event_type}"
            )

        self.service.consume(envelope)


Stage = MonolithStage | ServiceStage
