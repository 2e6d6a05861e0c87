"""How far a follower is behind its writer, counted in events.

An event is pending when the writer's outbox holds it (after the follower's
backfill position, and from the writer's side) and the follower's inbox has
no record of applying it. Zero pending is what a write flip waits for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migrate.hosts.tables import backfills
from migrate.kernel.sql import create_engine
from migrate.kernel.uow import queue_tables

if TYPE_CHECKING:
    from migrate.system import System


def pending(
    context: str, writer: Engine, follower: Engine, origin: str, after: int = 0
) -> int:
    outbox, _ = queue_tables(context)
    _, inbox = queue_tables(context)
    with writer.connect() as db:
        produced = {
            row.event_id
            for row in db.execute(
                sa.select(outbox.c.event_id).where(
                    outbox.c.position > after, outbox.c.origin == origin
                )
            )
        }
    if not produced:
        return 0

    with follower.connect() as db:
        applied = {
            row.event_id
            for row in db.execute(
                sa.select(inbox.c.event_id).where(
                    inbox.c.consumer == f"{context}.replica"
                )
            )
        }
    return len(produced - applied)


def lag_by_direction(system: System, context: str) -> dict[str, int]:
    """Events each side has yet to apply of the other's, for `migrate status`."""
    settings = system.settings
    return lag_between(
        context,
        create_engine(settings.monolith_url),
        create_engine(settings.service_url(context)),
    )


def lag_between(context: str, monolith: Engine, service: Engine) -> dict[str, int]:
    """The same, over engines the caller keeps (the dashboard asks often)."""
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
        "to_service": pending(context, monolith, service, "monolith", after),
        "to_monolith": pending(context, service, monolith, "service"),
    }
