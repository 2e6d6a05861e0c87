"""Moving a context's writes between the monolith and its service, fenced.

The same step moves writes forward (`migrate shift <context> --writes`) and
back (`migrate rollback <context>`):

1. The router holds the context's writes (clients wait; none is refused).
2. The current writer is fenced: its role row changes under the lock every
   command reads, so commands already running finish and later ones are
   refused.
3. Wait until the other side has applied every event the writer wrote,
   and give it the writer's versions of the context's declared aggregates.
4. The other side becomes the writer. A service replays the events it kept;
   the monolith's catch-up handles the events it did not consume meanwhile.
5. The old writer becomes a replica, following the new writer's events.
6. The router sends writes to the new writer and releases the held ones.

If a step fails before the new writer is promoted, the old writer is made
the writer again and the router releases writes to it: nothing is half moved.

`roll_back` is the whole of `migrate rollback`: writes back first (when the
service has them), so the monolith serves reads only once it has applied
everything the service accepted; then every read back, any rollout of the
context marked rolled back, and shadowing off, since the service is no
longer a candidate.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import requests

from migrate.errors import ShiftRefused, SyncBehind, SystemNotRunning
from migrate.hosts.replica import adopt_versions
from migrate.kernel.sql import FENCED, REPLICA, WRITER, create_engine
from migrate.router import steering
from migrate.router.state import MONOLITH
from migrate.sync.lag import backfill_position, position, wait_until_applied
from migrate.system import System

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class FlipReport:
    context: str
    writer: str
    waited_seconds: float
    replayed: int


@dataclasses.dataclass(frozen=True)
class _Side:
    name: str  # "monolith" or "service": the origin its events carry
    backend: str  # the router's name for it
    base_url: str
    database_url: str


def move_writes(
    system: System,
    name: str,
    *,
    back: bool = False,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> FlipReport:
    """Move `name`'s writes to its service, or with `back` to the monolith."""
    say = progress or (lambda step: None)
    if system.manifest.context(name).finished:
        raise ShiftRefused(
            f"{name} is finished: the monolith no longer hosts it, so its writes "
            "have nowhere to move"
        )

    state = system.state
    status = state.status().get(name)
    if status is None:
        raise ShiftRefused(
            f"{name} is not extracted; run `migrate extract {name}` first"
        )

    monolith = _Side(
        "monolith",
        MONOLITH,
        system.settings.monolith_http,
        system.settings.monolith_url,
    )
    service = _Side(
        "service", name, system.service_url(name), system.settings.service_url(name)
    )
    old, new = (service, monolith) if back else (monolith, service)
    if status.writer != old.backend:
        raise ShiftRefused(f"{name}'s writes are already with {status.writer}")

    _require_up(f"{name}'s service", service.base_url)
    _require_up("the monolith", monolith.base_url)

    actor = "migrate rollback" if back else "migrate shift --writes"
    started = time.monotonic()
    state.hold_writes(name, True, actor, f"write flip: fencing the {old.name}")
    try:
        say(f"fencing {name} in the {old.name}")
        _set_role(old.base_url, name, FENCED)
        say(f"waiting until the {new.name} has applied every change of {name}")
        _wait_for_sync(
            name,
            old,
            new,
            after=_backfill_position(name, service),
            timeout=timeout,
            say=say,
        )
        # Versions of declared aggregates: the new writer's next change
        # must outrank everything the old writer published.
        adopt_versions(
            name,
            create_engine(old.database_url),
            create_engine(new.database_url),
        )
        say(f"making the {new.name} {name}'s writer")
        replayed = _set_role(new.base_url, name, WRITER).get("replayed", 0)
    except BaseException:
        _set_role(old.base_url, name, WRITER)
        state.hold_writes(
            name, False, actor, f"write flip abandoned; {old.name} writes"
        )
        raise

    _set_role(old.base_url, name, REPLICA)
    state.set_writer(name, new.backend, actor, "fenced flip: sync lag was zero")
    state.hold_writes(name, False, actor, f"writes released to the {new.name}")
    return FlipReport(name, new.backend, time.monotonic() - started, replayed)


@dataclasses.dataclass(frozen=True)
class RollbackReport:
    context: str
    writes_moved: FlipReport | None  # None: the monolith wrote already
    read_weight_was: int
    shadow_was: int  # percent mirrored before
    rollout: str | None  # the state of the context's latest rollout, after


def roll_back(
    system: System,
    name: str,
    *,
    reason: str = "",
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> RollbackReport:
    """Give `name` back to the monolith from any phase before it finished."""
    say = progress or (lambda step: None)
    state = system.state
    status = state.status().get(name)
    if status is None:
        raise ShiftRefused(f"{name} is not extracted; there is nothing to roll back")

    actor, why = "migrate rollback", reason or "rollback"
    moved = None
    if status.writer != MONOLITH:
        moved = move_writes(system, name, back=True, timeout=timeout, progress=say)
    say(f"sending every read of {name} to the monolith")
    steering.roll_back(state, name, actor, why)
    if status.shadow.percent:
        state.set_shadow(name, 0, actor, why)
    rollout = state.rollout(name)
    return RollbackReport(
        name,
        moved,
        status.read_weight,
        status.shadow.percent,
        rollout.state if rollout else None,
    )


def _backfill_position(name: str, service: _Side) -> int:
    return backfill_position(name, create_engine(service.database_url))


def _wait_for_sync(
    name: str, old: _Side, new: _Side, *, after: int, timeout: float, say: Progress
) -> None:
    writer = create_engine(old.database_url)
    # Only the monolith's outbox predates the backfill.
    after = after if old.name == "monolith" else 0
    try:
        wait_until_applied(
            name,
            writer,
            create_engine(new.database_url),
            old.name,
            after=after,
            upto=position(name, writer, old.name),
            timeout=timeout,
            say=say,
            follower_name=new.name,
        )
    except SyncBehind as behind:
        raise ShiftRefused(f"{behind}; writes stay with the {old.name}") from None


def _set_role(base_url: str, context: str, role: str) -> dict:
    reply = requests.put(
        f"{base_url}/_migrate/contexts/{context}/role", json={"role": role}, timeout=60
    )
    if reply.status_code != 200:
        raise ShiftRefused(
            f"{base_url} refused role {role} for {context}: "
            f"{reply.status_code} {reply.text[:200]}"
        )
    return dict(reply.json())


def _require_up(what: str, base_url: str) -> None:
    try:
        requests.get(f"{base_url}/_migrate/health", timeout=5).raise_for_status()
    except requests.RequestException as error:
        raise SystemNotRunning(
            f"{what} does not answer at {base_url} ({error.__class__.__name__}); "
            "start the system with `migrate up`"
        ) from None
