"""Compare a context's copy with its writer as of a recorded position.

Writes go on while a comparison runs, so "the copy equals the monolith" only
means something at a point of the writer's history. `compare` records the
writer's last outbox position first, waits (up to a timeout, saying how
many events are left) until the follower has applied every event up to it,
and then compares (`backfill.parity`). A row the writer changed after the
recorded position may differ only because its event is still on the way: a
chunk that differs is therefore compared once more, after the follower has
caught up with the writer's position at that moment, and only what still
differs is reported. Counts and totals are taken again at the same time.

The writer is the monolith until writes move, then the service; the
comparison is the same either way (monolith rows, converted, against the
service's), only whose outbox and whose inbox are read changes.

What it does not do: stop writes. A row that changes again between the two
passes can still show as different; run it again, or while writes are held.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from migrate.manifest import Context
from migrate.sync.backfill import Parity, parity, recheck
from migrate.sync.lag import backfill_position, position, wait_until_applied

MONOLITH, SERVICE = "monolith", "service"


@dataclasses.dataclass(frozen=True)
class Comparison:
    context: str
    writer: str  # "monolith" or "service": whose outbox the position is in
    position: int
    waited_seconds: float
    rechecked: int  # chunks that differed the first time, compared again
    settled: int  # of those, equal the second time: changed after the position
    parity: Parity


def compare(
    context: Context,
    monolith: Engine,
    service: Engine,
    *,
    writer: str = MONOLITH,
    timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    say = progress or (lambda line: None)
    if writer not in (MONOLITH, SERVICE):
        raise ValueError(f"writer {writer!r}: it is {MONOLITH!r} or {SERVICE!r}")

    source, follower = (
        (monolith, service) if writer == MONOLITH else (service, monolith)
    )
    # The monolith's events up to the backfill position reached the copy by
    # the backfill itself; the service's outbox is younger than its copy.
    after = backfill_position(context.name, service) if writer == MONOLITH else 0
    started = time.monotonic()

    def catch_up(upto: int) -> None:
        wait_until_applied(
            context.name,
            source,
            follower,
            writer,
            after=after,
            upto=upto,
            timeout=max(0.0, timeout - (time.monotonic() - started)),
            say=say,
            follower_name=SERVICE if writer == MONOLITH else MONOLITH,
        )

    at = position(context.name, source, writer)
    say(f"comparing {context.name} as of the {writer}'s outbox position {at}")
    catch_up(at)
    waited = time.monotonic() - started
    found = parity(context, monolith, service)
    if not found.differences:
        return Comparison(context.name, writer, at, waited, 0, 0, found)

    differing = sum(bad for bad, _ in found.chunks.values())
    say(f"{differing} chunks differ; comparing them again once the copy caught up")
    catch_up(position(context.name, source, writer))
    again = recheck(context, monolith, service, found)
    still = sum(bad for bad, _ in again.chunks.values())
    return Comparison(
        context.name, writer, at, waited, differing, differing - still, again
    )
