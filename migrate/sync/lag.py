"""How far a follower is behind its writer, in events and in seconds.

An event is pending when the writer's outbox holds it (after the follower's
backfill position, and from the writer's side) and the follower's inbox has
no record of applying it. Zero pending is what a write flip waits for.

The lag in seconds is the age of the oldest pending event (from its
`occurred_at` in the writer's outbox): 0 when nothing is pending, growing
while a follower is stuck. It is not how long delivery takes.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

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
) -> Lag:
    """The events of `origin` the follower has yet to apply, and the age of
    the oldest of them."""
    outbox, inbox = queue_tables(context)
    with writer.connect() as db:
        produced = {
            row.event_id: row.occurred_at
            for row in db.execute(
                sa.select(outbox.c.event_id, outbox.c.occurred_at).where(
                    outbox.c.position > after, outbox.c.origin == origin
                )
            )
        }
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
    context: str, writer: Engine, follower: Engine, origin: str, after: int = 0
) -> int:
    return behind(context, writer, follower, origin, after).events


def lags(context: str, monolith: Engine, service: Engine) -> dict[str, Lag]:
    """Each direction's lag: the service behind the monolith, and back."""
    with service.connect() as db:
        after = (
            db.execute(
                sa.select(backfills.c.source_position).where(
                    backfills.c.context == context
                )
            ).scalar()
            or 0
        )
    return {
        "to_service": behind(context, monolith, service, "monolith", after),
        "to_monolith": behind(context, service, monolith, "service"),
    }


def lag_by_direction(system: System, context: str) -> dict[str, int]:
    """Events each side has yet to apply of the other's, for `migrate status`."""
    settings = system.settings
    found = lags(
        context,
        create_engine(settings.monolith_url),
        create_engine(settings.service_url(context)),
    )
    return {direction: lag.events for direction, lag in found.items()}
