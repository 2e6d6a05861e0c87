"""The hosts a provider is verified on, as its state handlers see them.

A stage runs beside a running host, on the host's database, with the code
under verification, and offers state handlers what a context offers anyone:

- `ports(context)`: the context's units of work (and, on the monolith,
  ordering's ports to catalog and customers), for its handlers and API;
- `set_role(context, role)`: through the host's own control API
  (`PUT /_migrate/contexts/<context>/role`), as a write flip does;
- on a service, `follow(event)` (the context's replica applies one of its
  own events, as from the monolith's outbox) and `consume(event)` (the
  context handles an event it consumes, as from its queue).

`published_since(context, mark)` reads the events the context appended to
its outbox after `mark`: exactly what its relay would publish next, less the
row images of declared aggregates (the kit's own replication, which no
consumer holds a contract on). A stage
puts every role it changed back with `restore`, after each interaction.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migrate.contracts.states import MONOLITH, SERVICE
from migrate.kernel.events import Envelope, Event
from migrate.kernel.images import IMAGE_EVENT
from migrate.kernel.sql import REPLICA, WRITER
from migrate.kernel.uow import queue_tables

log = logging.getLogger(__name__)

# Events a stage hands a service come from the monolith, as in production
# before the service writes; the filter policies route them by origin.
FROM_MONOLITH = "monolith"


class _Stage:
    host: str
    default_role: str

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

    def __init__(self, database_url: str, control_url: str):
        from monolith.host import Monolith

        self.monolith = Monolith(database_url)
        super().__init__(self.monolith.engine, control_url)

    def ports(self, context: str) -> Any:
        return self.monolith.ports(context)


class ServiceStage(_Stage):
    host = SERVICE
    default_role = REPLICA

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


Stage = MonolithStage | ServiceStage
