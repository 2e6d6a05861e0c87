"""How far a follower is behind its writer, counted in events.

An event is pending when the writer's outbox holds it (after the follower's
backfill position, and from the writer's side) and the follower's inbox has
no record of applying it. Zero pending is what a write flip waits for.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migrate.kernel.uow import queue_tables


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
