"""Moving a context's writes from the monolith to its service, in one fenced step.

1. The router holds the context's writes (clients wait; none is refused).
2. The monolith is fenced: its role row changes under the lock every command
   reads, so commands already running finish and later ones are refused.
3. Wait until the service has applied every event the monolith wrote.
4. The service becomes the writer and replays the events it kept.
5. The monolith becomes a replica, following the service's events.
6. The router sends writes to the service and releases the held ones.

If any step fails before the service writes, the monolith is made the
writer again and the router releases writes to it: nothing is half moved.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import requests
import sqlalchemy as sa

from migrate.errors import ShiftRefused, SystemNotRunning
from migrate.hosts.tables import backfills
from migrate.kernel.sql import FENCED, REPLICA, WRITER, create_engine
from migrate.router.state import MONOLITH
from migrate.sync.lag import pending
from migrate.system import System

Progress = Callable[[str], None]
ACTOR = "migrate shift --writes"


@dataclasses.dataclass(frozen=True)
class FlipReport:
    context: str
    waited_seconds: float
    replayed: int


def move_writes(
    system: System,
    name: str,
    *,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> FlipReport:
    say = progress or (lambda step: None)
    state = system.state
    status = state.status().get(name)
    if status is None:
        raise ShiftRefused(
            f"{name} is not extracted; run `migrate extract {name}` first"
        )

    if status.writer != MONOLITH:
        raise ShiftRefused(f"{name}'s writes are already with {status.writer}")

    monolith = system.settings.monolith_http
    service = system.service_url(name)
    _require_up(f"{name}'s service", service)
    _require_up("the monolith", monolith)

    started = time.monotonic()
    state.hold_writes(name, True, ACTOR, "write flip: fencing the monolith")
    try:
        say(f"fencing {name} in the monolith")
        _set_role(monolith, name, FENCED)
        say(f"waiting until {name}'s service has applied every change")
        _wait_for_sync(system, name, timeout, say)
        say(f"making {name}'s service the writer")
        replayed = _set_role(service, name, WRITER).get("replayed", 0)
    except BaseException:
        _set_role(monolith, name, WRITER)
        state.hold_writes(name, False, ACTOR, "write flip abandoned; monolith writes")
        raise

    _set_role(monolith, name, REPLICA)
    state.set_writer(name, name, ACTOR, "fenced flip: sync lag was zero")
    state.hold_writes(name, False, ACTOR, f"writes released to {name}'s service")
    return FlipReport(name, time.monotonic() - started, replayed)


def _wait_for_sync(system: System, name: str, timeout: float, say: Progress) -> None:
    settings = system.settings
    monolith = create_engine(settings.monolith_url)
    service = create_engine(settings.service_url(name))
    with service.connect() as db:
        after = (
            db.execute(
                sa.select(backfills.c.source_position).where(
                    backfills.c.context == name
                )
            ).scalar()
            or 0
        )

    deadline = time.monotonic() + timeout
    last = None
    while True:
        left = pending(name, monolith, service, origin="monolith", after=after)
        if left == 0:
            return
        if left != last:
            say(f"{left} events still to apply")
            last = left
        if time.monotonic() > deadline:
            raise ShiftRefused(
                f"{name}'s service still had {left} of the monolith's events to apply "
                f"after {timeout:g} s; writes stay with the monolith"
            )
        time.sleep(0.1)


def _set_role(base_url: str, context: str, role: str) -> dict:
    reply = requests.put(
        f"{base_url}/_migrate/contexts/{context}/role", json={"role": role}, timeout=60
    )
    if reply.status_code != 200:
        raise ShiftRefused(
            f"{base_url} refused role {role} for {context}: "
            f"{reply.status_code} {reply.text[:200]}"
        )
    return reply.json()


def _require_up(what: str, base_url: str) -> None:
    try:
        requests.get(f"{base_url}/_migrate/health", timeout=5).raise_for_status()
    except requests.RequestException as error:
        raise SystemNotRunning(
            f"{what} does not answer at {base_url} ({error.__class__.__name__}); "
            "start the system with `migrate up`"
        ) from None
