"""The unit of work every context's handlers run in.

One transaction on one connection: the handler's changes, the outbox rows for
the events it recorded, and the inbox row for the event it handled commit
together or not at all. A host that is not the context's writer refuses to
open a unit of work for a command, so a fenced or replica host cannot change
what another host owns. A command's unit of work over a context that
declares aggregates also records their row images (see
`migrate.kernel.images`) in the same transaction.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migrate.kernel.events import Envelope, Event
from migrate.kernel.images import Aggregate, ChangeTracker
from migrate.kernel.sql import HOSTING as _HOSTING
from migrate.kernel.sql import WRITER, inbox_table, outbox_table
from migrate.observe import tracing


class AlreadyHandled(Exception):
    """The event this unit of work was claimed for was handled before."""


class HostNotWriter(Exception):
    """A command reached a host that does not, right now, write the context."""

    def __init__(self, context: str, role: str):
        super().__init__(
            f"this host is {role} for {context}; commands go to its writer"
        )
        self.context = context
        self.role = role


@functools.cache
def queue_tables(context: str) -> tuple[sa.Table, sa.Table]:
    """A context's outbox and inbox tables (one shared definition each)."""
    metadata = sa.MetaData()
    return outbox_table(metadata, context), inbox_table(metadata, context)


def _outbox_lock_key(context: str) -> int:
    # A stable 63-bit key per outbox; Python's hash() changes between runs.
    digest = hashlib.blake2b(f"outbox:{context}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def now() -> str:
    return datetime.now(UTC).isoformat()


def role_of(connection: Connection, context: str, *, lock: bool = False) -> str:
    """The role this database's host plays for a context (writer when unset)."""
    query = sa.select(_HOSTING.c.role).where(_HOSTING.c.context == context)
    if lock:
        # A shared row lock: a fence (an UPDATE of this row) waits for every
        # command already running, and every later command sees the fence.
        query = query.with_for_update(read=True)
    role = connection.execute(query).scalar()
    return role or WRITER


def set_role(connection: Connection, context: str, role: str) -> None:
    changed = connection.execute(
        _HOSTING.update()
        .where(_HOSTING.c.context == context)
        .values(role=role, changed_at=now())
    )
    if changed.rowcount == 0:
        connection.execute(
            _HOSTING.insert().values(context=context, role=role, changed_at=now())
        )


class UnitOfWork:
    """Base class; a context's own unit of work adds its repositories."""

    context: str

    def __init__(
        self,
        engine: Engine,
        origin: str,
        *,
        command: bool = True,
        claim: tuple[str, str] | None = None,
        after_commit: Callable[[list[Envelope]], None] | None = None,
        aggregates: Sequence[Aggregate] = (),
    ):
        """`command` demands that this host write the context; a query or a
        replica's update passes False. `claim` is (consumer, event id): the
        unit of work then records the event as handled, and refuses to open
        with `AlreadyHandled` when it was. `after_commit` receives the
        envelopes that committed (a host dispatches them in-process).
        `aggregates` are the context's declared aggregates, whose images a
        command records."""
        self._engine = engine
        self._origin = origin
        self._command = command
        self._claim = claim
        self._after_commit = after_commit
        self._aggregates = tuple(aggregates)
        self._tracker: ChangeTracker | None = None
        self._events: list[Event] = []
        self._outbox, self._inbox = queue_tables(self.context)
        self.committed: list[Envelope] = []

    def __enter__(self):  # type: ignore[no-untyped-def]
        self.connection = self._engine.connect()
        if not self._command and self._claim is None:
            self.connection = self.connection.execution_options(readonly=True)
        self._transaction = self.connection.begin()
        try:
            self._guard()
        except BaseException:
            self.__exit__(None, None, None)
            raise

        if self._command and self._aggregates:
            self._tracker = ChangeTracker(self.context, self._aggregates)
            self._tracker.watch(self.connection)
        return self

    def _guard(self) -> None:
        if self._command:
            role = role_of(self.connection, self.context, lock=True)
            if role != WRITER:
                raise HostNotWriter(self.context, role)

        if self._claim and not self.first_delivery(*self._claim):
            raise AlreadyHandled(f"{self._claim[0]} handled event {self._claim[1]}")

    def __exit__(self, *exc_info: Any) -> None:
        if self._transaction.is_active:
            self._transaction.rollback()
        self.connection.close()

    def record(self, event: Event) -> None:
        self._events.append(event)

    def first_delivery(self, consumer: str, event_id: str) -> bool:
        """Claim an event for a consumer; False when it was handled before.

        Two concurrent deliveries of one event both pass the read, and the
        second insert fails on the primary key: its transaction rolls back,
        the message is redelivered, and the retry reads the claim.
        """
        seen = self.connection.execute(
            sa.select(self._inbox.c.event_id).where(
                self._inbox.c.consumer == consumer, self._inbox.c.event_id == event_id
            )
        ).first()
        if seen:
            return False

        self.connection.execute(
            self._inbox.insert().values(
                consumer=consumer, event_id=event_id, handled_at=now()
            )
        )
        return True

    def commit(self) -> None:
        envelopes = [Envelope.wrap(event, self._origin) for event in self._events]
        if self._tracker is not None:
            envelopes += self._tracker.record(self.connection, self._origin)
        if envelopes:
            self._take_outbox_turn()
            trace_header = tracing.current_header()
            self.connection.execute(
                self._outbox.insert(),
                [
                    {
                        "event_id": e.event_id,
                        "event_type": e.event_type,
                        "aggregate_id": e.aggregate_id,
                        "schema_version": e.schema_version,
                        "origin": e.origin,
                        "occurred_at": e.occurred_at,
                        "payload": e.to_json(),
                        "trace_header": trace_header,
                    }
                    for e in envelopes
                ],
            )
        self._transaction.commit()
        self._events.clear()
        self.committed.extend(envelopes)
        if envelopes and self._after_commit:
            self._after_commit(envelopes)

    def _take_outbox_turn(self) -> None:
        """Make positions commit in order, so a relay never skips past one.

        Positions come from a sequence when rows are inserted, but
        transactions commit in their own order: on PostgreSQL a relay could
        see position 11 committed while 10 is still open, publish 11, and
        publish 10 after it. A transaction-scoped advisory lock per outbox,
        taken just before the insert and held until commit, makes the
        transaction that takes a position also the next to commit. SQLite
        needs nothing: BEGIN IMMEDIATE already lets one writer in at a time.
        """
        if self.connection.dialect.name == "postgresql":
            self.connection.execute(
                sa.select(sa.func.pg_advisory_xact_lock(_outbox_lock_key(self.context)))
            )
