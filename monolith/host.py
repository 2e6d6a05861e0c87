"""The monolith host: every context in one process and one database.

It wires each context's ports in-process: units of work on the shared
database, the other contexts' APIs its manifest entry names as ports called
directly (see `migrate.hosts.calls`), and events dispatched to the contexts
that consume them right after the producer's transaction commits. A context
that `migrate finish` moved out is not hosted at all: a port onto it calls
its service's API through the router.
The outbox rows are written anyway, in the same transaction, because they are
what relays publish and what `catch_up` reads to finish a dispatch that a
crash interrupted. A consumer claims each event id in its inbox, so a
dispatch that runs twice handles the event once.

`MIGRATE_SQL_GUARD=warn` (or `raise`) watches every statement the host runs
for SQL that crosses contexts (see `migrate.check.sqlguard`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from migrate.check.sqlguard import watch_from_environment
from migrate.errors import ConfigurationError, MigrateError
from migrate.hosts.calls import client_class, in_process_port
from migrate.kernel.events import Envelope, Event
from migrate.kernel.sql import create_engine
from migrate.kernel.uow import AlreadyHandled, HostNotWriter, UnitOfWork, queue_tables
from migrate.manifest import Context, Manifest, PortSpec
from migrate.manifest import load as load_manifest

log = logging.getLogger(__name__)

ORIGIN = "monolith"
# Events read back per statement when a consumer catches up.
CATCH_UP_BATCH = 500


class NotHosted(MigrateError):
    def __init__(self, context: str, hosted: list[str]):
        super().__init__(
            f"the monolith does not host {context}; it hosts "
            f"{', '.join(sorted(hosted))}"
        )
        self.context = context


@dataclasses.dataclass(frozen=True)
class Subscriber:
    context: str
    event_type: type[Event]
    handler: Callable[[Any, Any], None]

    @property
    def consumer(self) -> str:
        return f"{self.context}.{self.handler.__name__}"


class ContextPorts:
    """A context's units of work, and one attribute per port it declares."""

    def __init__(
        self,
        command: Callable[[], Any],
        query: Callable[[], Any],
        replica: Callable[[], Any],
    ):
        self.command = command
        self.query = query
        self.replica = replica


class Monolith:
    def __init__(
        self,
        database_url: str,
        manifest: Manifest | None = None,
        router_url: str | None = None,
    ):
        """`router_url` is where calls of a finished context's API go (the
        monolith no longer hosts it); needed only when there is one."""
        self.database_url = database_url
        self.engine = create_engine(database_url)
        self.manifest = manifest or load_manifest()
        self.router_url = router_url
        # Off unless MIGRATE_SQL_GUARD asks: SQL across contexts, reported.
        self.sql_guard = watch_from_environment(self.engine, self.manifest)
        # A finished context is a service of its own: no unit of work, no
        # consumer, no route of it runs here.
        self.hosted = self.manifest.hosted
        self._units = {
            name: context.load(context.unit_of_work)
            for name, context in self.hosted.items()
        }
        self._aggregates = {
            name: context.aggregates_built() for name, context in self.hosted.items()
        }
        self.subscribers = [
            Subscriber(name, event_type, handler)
            for name, context in self.hosted.items()
            for event_type, handler in context.event_handlers.items()
        ]

    def unit_of_work(
        self,
        context: str,
        *,
        command: bool = True,
        claim: tuple[str, str] | None = None,
    ) -> Any:
        """The context's own unit of work (its protocol is the context's)."""
        if context not in self._units:
            raise NotHosted(context, list(self._units))

        unit: UnitOfWork = self._units[context](
            self.engine,
            ORIGIN,
            command=command,
            claim=claim,
            after_commit=self.dispatch,
            aggregates=self._aggregates[context],
        )
        return unit

    def ports(self, context: str) -> ContextPorts:
        def query(name: str = context) -> UnitOfWork:
            return self.unit_of_work(name, command=False)

        ports = ContextPorts(
            command=lambda: self.unit_of_work(context),
            query=query,
            replica=lambda: self.unit_of_work(context, command=False),
        )
        owned = self.manifest.context(context)
        for port in owned.ports:
            setattr(ports, port.name, self._port(owned, port, query))
        return ports

    def _port(self, owned: Context, port: PortSpec, query: Callable) -> Any:
        provider = self.manifest.context(port.name)
        if not provider.finished:
            return in_process_port(
                owned, port, provider, functools.partial(query, port.name)
            )

        if not self.router_url:
            raise ConfigurationError(
                f"{owned.name}'s {port.name} port: {port.name} is finished, so its "
                "API is called through the router; set MIGRATE_ROUTER_URL"
            )
        return client_class(owned, port)(self.router_url)

    def dispatch(self, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            for subscriber in self._subscribers_of(
                envelope.context, envelope.event_type
            ):
                self._deliver(subscriber, envelope.event_id, envelope.data)

    def catch_up(self) -> int:
        """Deliver every stored event a writing consumer has not handled yet."""
        delivered = 0
        for subscriber in self.subscribers:
            outbox, _ = queue_tables(subscriber.event_type.context)
            for row in self._missed(subscriber, outbox):
                data = Envelope.from_json(row.payload).data
                if not self._deliver(subscriber, row.event_id, data):
                    break
                delivered += 1
        return delivered

    def _missed(self, subscriber: Subscriber, outbox: sa.Table) -> Iterator[Any]:
        """The producer's stored events that the consumer has not handled.

        Separate statements, never one join: the outbox and the inbox belong
        to two contexts, and either may move to a database of its own.
        """
        _, inbox = queue_tables(subscriber.context)
        readonly = self.engine.connect().execution_options(readonly=True)
        with readonly as db:
            handled = set(
                db.scalars(
                    sa.select(inbox.c.event_id).where(
                        inbox.c.consumer == subscriber.consumer
                    )
                )
            )
            stored = db.execute(
                sa.select(outbox.c.event_id, outbox.c.position)
                .where(outbox.c.event_type == subscriber.event_type.type_name())
                .order_by(outbox.c.position)
            ).all()
        missed = [row.position for row in stored if row.event_id not in handled]
        for start in range(0, len(missed), CATCH_UP_BATCH):
            batch = missed[start : start + CATCH_UP_BATCH]
            with self.engine.connect().execution_options(readonly=True) as db:
                rows = db.execute(
                    sa.select(outbox.c.event_id, outbox.c.payload)
                    .where(outbox.c.position.in_(batch))
                    .order_by(outbox.c.position)
                ).all()
            yield from rows

    def _subscribers_of(self, context: str, event_type: str) -> list[Subscriber]:
        return [
            s
            for s in self.subscribers
            if s.event_type.context == context
            and s.event_type.type_name() == event_type
        ]

    def handle(
        self, subscriber: Subscriber, event_id: str, data: dict[str, Any]
    ) -> bool:
        """Hand one event to one consumer; False when this host does not
        write the consumer's context. Any other failure propagates."""
        event = subscriber.event_type.from_data(data)
        uow = self.unit_of_work(
            subscriber.context, claim=(subscriber.consumer, event_id)
        )
        try:
            subscriber.handler(event, uow)
        except AlreadyHandled:
            pass
        except HostNotWriter:
            # Another host writes this context now; it consumes the event
            # from its own queue.
            log.debug(
                "%s is not written here; %s left to its writer",
                subscriber.context,
                event_id,
            )
            return False
        return True

    def subscribers_of(self, context: str, event_type: str) -> list[Subscriber]:
        """The consumers of one event type of `context` that this host runs."""
        return self._subscribers_of(context, event_type)

    def _deliver(
        self, subscriber: Subscriber, event_id: str, data: dict[str, Any]
    ) -> bool:
        """Hand one event to one consumer; False when this host may not run it."""
        try:
            return self.handle(subscriber, event_id, data)
        except Exception:
            # The producer's change is committed and its event stored: a
            # consumer's failure must not fail the producer's request.
            # `catch_up` delivers the event again later.
            log.exception(
                "%s failed on event %s; it will be retried",
                subscriber.consumer,
                event_id,
            )
            return False
