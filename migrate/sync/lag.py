"""How far a follower is behind its writer, in events and in seconds.

An event is pending when the writer's outbox holds it (after the follower's
backfill position, up to a position if one is given, and from the writer's
side) and the follower's inbox has no record of applying it. Zero pending is
what a write flip waits for, and what `migrate verify` waits for up to the
position it compares at.

The lag in seconds is the age of the oldest pending event (from its
`occurred_at` in the writer's outbox): 0 when nothing is pending, growing
while a follower is stuck. It is not how long delivery takes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migrate.errors import SyncBehind
from migrate.hosts.tables import backfills
from migrate.kernel.sql import create_engine
from migrate.kernel.uow import queue_tables

if TYPE_CHECKING:
    from migrate.system import System

DIRECTIONS = ("to_service", "to_monolith")


@dataclasses.dataclass(frozen=True)
class Lag:
    events: int
    seconds: float


def behind(
    context: str,
    writer: Engine,
    follower: Engine,
    origin: str,
    after: int = 0,
    now: datetime | None = None,
    upto: int | None = None,
) -> Lag:
    """The events of `origin` the follower has yet to apply, and the age of
    the oldest of them."""
    outbox, inbox = queue_tables(context)
    query = sa.select(outbox.c.event_id, outbox.c.occurred_at).where(
        outbox.c.position > after, outbox.c.origin == origin
    )
    if upto is not None:
        query = query.where(outbox.c.position <= upto)
    with writer.connect() as db:
        produced = {row.event_id: row.occurred_at for row in db.execute(query)}
    if not produced:
        return Lag(0, 0.0)

    with follower.connect() as db:
        applied = {
            row.event_id
            for row in db.execute(
                sa.select(inbox.c.event_id).where(
                    inbox.c.consumer == f"{context}.replica"
                )
            )
        }
    waiting = [at for event_id, at in produced.items() if event_id not in applied]
    if not waiting:
        return Lag(0, 0.0)

    oldest = min(datetime.fromisoformat(at) for at in waiting)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    age = ((now or datetime.now(UTC)) - oldest).total_seconds()
    return Lag(len(waiting), max(0.0, age))


def pending(
    context: str,
    writer: Engine,
    follower: Engine,
    origin: str,
    after: int = 0,
    upto: int | None = None,
) -> int:
    return behind(context, writer, follower, origin, after, upto=upto).events


def position(context: str, writer: Engine, origin: str) -> int:
    """The writer's last outbox position of its own events (0 when none)."""
    outbox, _ = queue_tables(context)
    with writer.connect() as db:
        found = db.execute(
            sa.select(sa.func.max(outbox.c.position)).where(outbox.c.origin == origin)
        ).scalar()
    return int(found or 0)


def backfill_position(context: str, service: Engine) -> int:
    """Monolith events up to here reached the service by backfill, not sync."""
    with service.connect() as db:
        found = db.execute(
            sa.select(backfills.c.source_position).where(backfills.c.context == context)
        ).scalar()
    return int(found or 0)


def wait_until_applied(
    context: str,
    writer: Engine,
    follower: Engine,
    origin: str,
    *,
    after: int,
    upto: int,
    timeout: float,
    say: Callable[[str], None],
    follower_name: str,
) -> float:
    """Wait until the follower applied every event up to `upto`; return the
    seconds waited. Raises `SyncBehind` after `timeout` seconds."""
    started = time.monotonic()
    last = None
    while True:
        left = pending(context, writer, follower, origin, after, upto)
        if left == 0:
            return time.monotonic() - started
        if left != last:
            say(f"{left} {origin} events up to position {upto} still to apply")
            last = left
        if time.monotonic() - started > timeout:
            raise SyncBehind(
                f"the {follower_name} still had {left} of the {origin}'s {context} "
                f"events up to position {upto} to apply after {timeout:g} s; is "
                "its sync running (`migrate up`)?"
            )
        time.sleep(0.1)


def lags(context: str, monolith: Engine, service: Engine) -> dict[str, Lag]:
    """Each direction's lag: the service behind the monolith, and back."""
    after = backfill_position(context, service)
    return {
        "to_service": behind(context, monolith, service, "monolith", after),
        "to_monolith": behind(context, service, monolith, "service"),
    }


def lag_by_direction(system: System, context: str) -> dict[str, dict[str, float]]:
    """Each side's lag behind the other's changes, for `migrate status`:
    events not yet applied, and the age of the oldest in seconds."""
    settings = system.settings
    found = lags(
        context,
        create_engine(settings.monolith_url),
        create_engine(settings.service_url(context)),
    )
    return {
        direction: {"events": lag.events, "seconds": round(lag.seconds, 3)}
        for direction, lag in found.items()
    }
