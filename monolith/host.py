"""The monolith host: every context in one process and one database.

It wires each context's ports in-process: units of work on the shared
database, the other contexts' APIs its `Ports` protocol names called
directly (see `migrate.hosts.calls`), and events dispatched to the contexts
that consume them right after the producer's transaction commits. A context
that `migrate finish` moved out is not hosted at all: a port onto it calls
its service's API through the router.
The outbox rows are written anyway, in the same transaction, because they are
what relays publish and what `catch_up` reads to finish a dispatch that a
crash interrupted. A consumer claims each event id in its inbox, so a
dispatch that runs twice handles the event once.

With `side_effects=True` the host also runs each context's side effects
in-process (the standalone monolith, `python -m monolith`): the same
handler a Lambda function runs, behind the context's outlet, handed each
event the context committed, after the commit, so a transaction that rolls
back sends nothing. A side effect claims the event id in its context's
inbox as any consumer does, so a dispatch that a crash interrupted and
`catch_up` finished sends once. It runs in the thread that committed and
only where the context is written; a failure is logged and caught up
later. Off, as under `migrate up`, the side effects are Lambda functions
fed by SQS, and this host leaves them alone.

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
from migrate.errors import ConfigurationError, ManifestError, MigrateError
from migrate.hosts.calls import client_class, in_process_port
from migrate.kernel.events import Envelope, Event
from migrate.kernel.sql import create_engine
from migrate.kernel.uow import AlreadyHandled, HostNotWriter, UnitOfWork, queue_tables
from migrate.manifest import Context, ContextPort, Manifest, SideEffect
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
    name: str = ""

    @property
    def consumer(self) -> str:
        return f"{self.context}.{self.name or self.handler.__name__}"


@dataclasses.dataclass(frozen=True)
class InProcessSideEffect:
    """A side effect run on the host, once per event: the unit of work it
    gets is claimed for the event id, and commits the claim after the work."""

    handler: Callable[[dict[str, Any], Any], bool]
    outlet: Callable[[], Any]

    def __call__(self, event: Event, uow: Any) -> None:
        with uow:
            self.handler(event.data(), self.outlet())
            uow.commit()


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
        *,
        side_effects: bool = False,
        router_url: str | None = None,
    ):
        """`router_url` is where calls of a finished context's API go (the
        monolith no longer hosts it); needed only when there is one."""
        self.database_url = database_url
        self.runs_side_effects = side_effects
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
        if side_effects:
            self.subscribers += [
                _side_effect(context, effect)
                for context in self.hosted.values()
                for effect in context.side_effects
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
        for port in owned.ports_to(self.manifest.contexts):
            setattr(ports, port.name, self._port(owned, port, query))
        return ports

    def _port(self, owned: Context, port: ContextPort, query: Callable) -> Any:
        provider = self.manifest.context(port.provider)
        if not provider.finished:
            return in_process_port(
                owned, port, provider, functools.partial(query, port.provider)
            )

        if not self.router_url:
            raise ConfigurationError(
                f"{owned.name}'s {port.name} port: {port.provider} is finished, so "
                "its API is called through the router; set MIGRATE_ROUTER_URL"
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

    def subscribers_of(self, context: str, event_type: str) -> list[Subscriber]:
        """The consumers of one event type of `context` that this host runs."""
        return self._subscribers_of(context, event_type)

    def handle(self, context: str, envelope: Envelope) -> None:
        """Have `context` handle one event it consumes, now, as a dispatch
        would (claimed by its event id); what the handler raises, raises."""
        found = [
            s for s in self._subscribers_of(envelope.context, envelope.event_type)
            if s.context == context
        ]
        if not found:
            raise ValueError(
                f"{context} consumes no {envelope.context} {envelope.event_type}"
            )

        for subscriber in found:
            self._run(subscriber, envelope.event_id, envelope.data)

    def _run(self, subscriber: Subscriber, event_id: str, data: dict[str, Any]) -> None:
        event = subscriber.event_type.from_data(data)
        uow = self.unit_of_work(
            subscriber.context, claim=(subscriber.consumer, event_id)
        )
        try:
            subscriber.handler(event, uow)
        except AlreadyHandled:
            pass

    def _deliver(
        self, subscriber: Subscriber, event_id: str, data: dict[str, Any]
    ) -> bool:
        """Hand one event to one consumer; False when this host may not run it."""
        try:
            self._run(subscriber, event_id, data)
        except HostNotWriter:
            # Another host writes this context now; it consumes the event
            # from its own queue.
            log.debug(
                "%s is not written here; %s left to its writer",
                subscriber.context,
                event_id,
            )
            return False
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
        return True


def _side_effect(context: Context, effect: SideEffect) -> Subscriber:
    events = context.load(context.events)
    event_type = next(
        (value for value in vars(events).values()
         if isinstance(value, type) and issubclass(value, Event)
         and value.__module__ == events.__name__ and value.type_name() == effect.on),
        None,
    )
    if event_type is None:
        raise ManifestError(
            f"context {context.name}: side effect {effect.name} is on {effect.on}, "
            f"which {context.events} does not define"
        )

    outlets = context.load(f"{context.outlets}:outlet")
    run = InProcessSideEffect(context.load(effect.handler),
                              functools.partial(outlets, effect.name))
    return Subscriber(context.name, event_type, run, effect.name)
