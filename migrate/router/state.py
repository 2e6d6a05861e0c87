"""The router's state: backends, routes, weights, writers, and their history.

One SQLite file holds everything a router needs to route, so the command
line can change it while a router process reads it. The file is in WAL mode:
readers never wait for a writer, and writers queue one at a time (each change
is one `BEGIN IMMEDIATE` transaction, with a 30 s busy timeout).

Every change, in the same transaction, bumps a revision counter and writes a
ledger row (when, who, which context, what, from, to, why), so a router
notices a change by reading one integer and an operator can always answer
"who moved billing to 25 %, and why?". A call that changes nothing writes
nothing and leaves the revision alone.

A new context starts with its reads on the monolith (weight 0) and the
monolith as its writer; registering its routes again keeps both. The salt of
a context's sticky buckets defaults to the context's name; changing it
reshuffles every key, so it changes only when asked.

Besides weights and writers the store keeps, each change in the ledger:
a route's own read weight (which a change of its context's weight clears,
so a shift moves the whole context unless asked otherwise), the side that
reads without a bucket key go to, shadow settings, the SLO the router
enforces, the hash of the secret that lets testers force a side (never
the secret), and the progress of a rollout (`rollouts`; its steps are
ledgered as weight changes, an operator's pause, resume or stop as a
rollout change).

A rollout is walked by one process, whose pid and host the store keeps
with it. A walk killed outright (SIGKILL, a crash, a reboot) cannot
record its own end, so an active rollout whose walker no longer exists on
this host is *stale*: `end_stale_rollouts` ends it, in the ledger, and a
new rollout of the context ends it first rather than being refused. A
walker on another host is taken to be alive, as is one whose pid was
reused since: the rollout then waits for `migrate rollout stop` or
`migrate shift <context> 0`, never the other way round.

Each context is in one phase of its migration (`PHASES`): extracted when
its routes are registered, syncing once extraction has backfilled and
verified its copy (`mark_synced`), shadow while a share of its requests is
mirrored, shifting reads while any of its reads go to the service, writes
moved while the service is its writer, finished once `set_finished` says
the monolith no longer hosts it. The store derives the phase from the
rest of the context's state at the end of every change, so a rollback or
an SLO breach that sets the weight to 0 moves it back down; a phase change
is a ledger row of its own (`what` = "phase"), in the same transaction and
with the same revision, actor and reason as the change that caused it.

What the store does not do: it does not check that a backend's URL answers,
nor that a writer really is ready to write; fencing and sync lag are the
business of whoever flips the writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from migrate.router.errors import (
    InvalidBackendUrl,
    InvalidRule,
    InvalidService,
    InvalidSetting,
    InvalidWeight,
    InvalidWriter,
    PhaseRefused,
    RouteTaken,
    ServiceStillWrites,
    UnknownBackend,
    UnknownContext,
    UnknownRoute,
)
from migrate.router.shadow import ShadowSettings, check_header, check_path
from migrate.router.slo import Slo
from migrate.router.table import Matcher, Route, check_route

MONOLITH = "monolith"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS backends (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS contexts (
    context TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    read_weight INTEGER NOT NULL CHECK (read_weight BETWEEN 0 AND 100),
    writer TEXT NOT NULL,
    writes_held INTEGER NOT NULL DEFAULT 0 CHECK (writes_held IN (0, 1)),
    salt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS routes (
    method TEXT NOT NULL,
    rule TEXT NOT NULL,
    context TEXT NOT NULL REFERENCES contexts (context),
    bucket_key TEXT,
    PRIMARY KEY (method, rule)
);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    context TEXT,
    what TEXT NOT NULL,
    from_value TEXT,
    to_value TEXT,
    reason TEXT NOT NULL,
    revision INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_by_context ON ledger (context, id);
CREATE TABLE IF NOT EXISTS revision (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO revision (only, value) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS route_weights (
    method TEXT NOT NULL,
    rule TEXT NOT NULL,
    weight INTEGER NOT NULL CHECK (weight BETWEEN 0 AND 100),
    PRIMARY KEY (method, rule)
);
CREATE TABLE IF NOT EXISTS keyless (
    context TEXT PRIMARY KEY REFERENCES contexts (context),
    side TEXT NOT NULL CHECK (side IN ('monolith', 'service'))
);
CREATE TABLE IF NOT EXISTS shadows (
    context TEXT PRIMARY KEY REFERENCES contexts (context),
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS slos (
    context TEXT PRIMARY KEY REFERENCES contexts (context),
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS options (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rollouts (
    context TEXT PRIMARY KEY REFERENCES contexts (context),
    steps TEXT NOT NULL,
    every REAL NOT NULL,
    step INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    walker_pid INTEGER,
    walker_host TEXT
);
CREATE TABLE IF NOT EXISTS phases (
    context TEXT PRIMARY KEY REFERENCES contexts (context),
    phase TEXT NOT NULL,
    synced INTEGER NOT NULL DEFAULT 0 CHECK (synced IN (0, 1)),
    finished INTEGER NOT NULL DEFAULT 0 CHECK (finished IN (0, 1))
);
"""

KEYLESS_SIDES = ("monolith", "service")

EXTRACTED, SYNCING, SHADOW = "extracted", "syncing", "shadow"
SHIFTING_READS, WRITES_MOVED, FINISHED = "shifting reads", "writes moved", "finished"
PHASES = (EXTRACTED, SYNCING, SHADOW, SHIFTING_READS, WRITES_MOVED, FINISHED)
# Columns added since the first release, for state files made before them:
# (table, column, its declaration).
_ADDED_COLUMNS = (
    ("rollouts", "walker_pid", "INTEGER"),
    ("rollouts", "walker_host", "TEXT"),
)
_OVERRIDE_SECRET = "override_secret_sha256"


@dataclasses.dataclass(frozen=True)
class ContextState:
    """How one context is routed right now."""

    name: str
    service: str
    read_weight: int
    writer: str
    writes_held: bool
    salt: str
    keyless_side: str = MONOLITH
    shadow: ShadowSettings = ShadowSettings()
    slo: Slo | None = None
    phase: str = EXTRACTED


@dataclasses.dataclass(frozen=True)
class ContextStatus:
    """A context's routing and its routes, as an operator reads them."""

    name: str
    service: str
    read_weight: int
    writer: str
    writes_held: bool
    salt: str
    routes: tuple[Route, ...]
    route_weights: Mapping[str, int] = dataclasses.field(default_factory=dict)
    keyless_side: str = MONOLITH
    shadow: ShadowSettings = ShadowSettings()
    slo: Slo | None = None
    rollout: Rollout | None = None
    phase: str = EXTRACTED


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """One change: who changed what of which context, from what to what."""

    id: int
    at: str
    actor: str
    context: str | None
    what: str
    before: str | None
    after: str | None
    reason: str
    revision: int


@dataclasses.dataclass(frozen=True)
class Rollout:
    """A progressive shift of a context's reads, as far as it has come."""

    context: str
    steps: tuple[int, ...]
    every: float
    step: int  # index into steps of the weight last set; -1 before the first
    state: str  # one of ROLLOUT_STATES
    reason: str
    actor: str
    started_at: str
    updated_at: str
    pid: int | None = None  # the process walking it, where it was recorded
    host: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_ROLLOUT_STATES

    @property
    def walker(self) -> str:
        return f"pid {self.pid} on {self.host}"


def walker_gone(rollout: Rollout) -> bool:
    """True when the rollout is active and the process walking it, on this
    host, no longer exists; False when that cannot be known (another host,
    no pid recorded)."""
    if not rollout.active or rollout.pid is None:
        return False

    if rollout.host != socket.gethostname():
        return False

    return not _process_exists(rollout.pid)


RUNNING, PAUSED, WAITING = "running", "paused", "waiting"
DONE, STOPPED, ROLLED_BACK = "done", "stopped", "rolled back"
ROLLOUT_STATES = (RUNNING, PAUSED, WAITING, DONE, STOPPED, ROLLED_BACK)
ACTIVE_ROLLOUT_STATES = frozenset({RUNNING, PAUSED, WAITING})


@dataclasses.dataclass(frozen=True)
class RoutingTable:
    """Everything a router needs, as of one revision; never changes."""

    revision: int
    backends: Mapping[str, str]
    contexts: Mapping[str, ContextState]
    routes: tuple[Route, ...]
    matcher: Matcher = dataclasses.field(repr=False, compare=False)
    route_weights: Mapping[tuple[str, str], int] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    override_secret: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        revision: int,
        backends: Mapping[str, str],
        contexts: Mapping[str, ContextState],
        routes: Iterable[Route],
        route_weights: Mapping[tuple[str, str], int] | None = None,
        override_secret: str | None = None,
    ) -> RoutingTable:
        routes = tuple(routes)
        return cls(
            revision,
            MappingProxyType(dict(backends)),
            MappingProxyType(dict(contexts)),
            routes,
            Matcher(routes),
            MappingProxyType(dict(route_weights or {})),
            override_secret,
        )

    def weight_of(self, route: Route) -> int:
        """The read weight of one route: its own, or its context's."""
        own = self.route_weights.get((route.method, route.rule))
        if own is not None:
            return own

        state = self.contexts.get(route.context)
        return 0 if state is None else state.read_weight

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        return self.matcher.match(method, path)


class StateStore:
    """The routing state in one SQLite file; safe across processes."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        with self._connection() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            # Several processes may open a new file at once; one creates it.
            connection.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
            _add_missing_columns(connection)

    # Changes -----------------------------------------------------------

    def set_backend(
        self, name: str, url: str, *, actor: str = "system", reason: str = ""
    ) -> int:
        """Point a backend name at a base URL (`http://127.0.0.1:5001`)."""
        if not url.startswith(("http://", "https://")):
            raise InvalidBackendUrl(name, url)

        url = url.rstrip("/")
        with self._changing() as connection:
            before = connection.execute(
                "SELECT url FROM backends WHERE name = ?", (name,)
            ).fetchone()
            if before is not None and before[0] == url:
                return _revision(connection)

            connection.execute(
                "INSERT INTO backends (name, url) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET url = excluded.url",
                (name, url),
            )
            return _record(
                connection, actor, None, f"backend {name}",
                before[0] if before else None, url, reason,
            )

    def register_routes(
        self,
        context: str,
        service_backend: str,
        routes: Iterable[tuple[str, str, str | None]],
        *,
        salt: str | None = None,
        actor: str = "system",
        reason: str = "",
    ) -> int:
        """Give a context its service and its full set of routes.

        `routes` are `(method, rule, bucket_key)`; they replace the
        context's earlier routes. Weight and writer stay as they were.
        """
        if service_backend == MONOLITH:
            raise InvalidService(context, service_backend)

        wanted = _routes_of(context, routes)
        with self._changing() as connection:
            _require_backend(connection, service_backend)
            _refuse_taken(connection, context, wanted)
            current = _context_row(connection, context)
            if current is None:
                revision = _create_context(
                    connection, context, service_backend, salt, actor, reason
                )
            else:
                revision = _update_context(
                    connection, current, service_backend, salt, actor, reason
                )

            before = _routes_text(_routes_in(connection, context))
            after = _routes_text(wanted.values())
            if before == after:
                return revision

            _drop_weights_of_removed(connection, context, wanted)
            connection.execute("DELETE FROM routes WHERE context = ?", (context,))
            connection.executemany(
                "INSERT INTO routes (method, rule, context, bucket_key) "
                "VALUES (?, ?, ?, ?)",
                [(r.method, r.rule, context, r.bucket_key) for r in wanted.values()],
            )
            return _record(
                connection, actor, context, "routes", before or None, after, reason
            )

    def set_weight(
        self,
        context: str,
        weight: int,
        actor: str,
        reason: str,
        *,
        route: str | None = None,
    ) -> int:
        """Send `weight` % of the context's keyed reads to its service.

        Without `route` the whole context moves, and routes that had a
        weight of their own follow it again. With `route` ("GET /rule", or
        just the rule for every read method of it) only that route moves.
        """
        whole = isinstance(weight, int) and not isinstance(weight, bool)
        if not whole or not 0 <= weight <= 100:
            raise InvalidWeight(context, weight)

        with self._changing() as connection:
            current = _require_context(connection, context)
            if route is not None:
                return _set_route_weight(
                    connection, current, route, weight, actor, reason
                )

            revision = _clear_route_weights(connection, context, actor, reason)
            return max(
                revision,
                _update(connection, current, "read_weight", weight, actor, reason),
            )

    def roll_back(self, context: str, actor: str, reason: str) -> int:
        """Every read of the context back to the monolith, and any rollout
        of it ended as rolled back (a ledger row of its own), in one
        transaction."""
        with self._changing() as connection:
            current = _require_context(connection, context)
            rollout = _rollout_of(connection, context)
            if rollout is not None and rollout.active:
                connection.execute(
                    "UPDATE rollouts SET state = ?, reason = ?, updated_at = ? "
                    "WHERE context = ?",
                    (ROLLED_BACK, reason, _now(), context),
                )
                # Before the weight's row, which stays the change's last word.
                _record(connection, actor, context, "rollout", rollout.state,
                        ROLLED_BACK, reason)
            _clear_route_weights(connection, context, actor, reason)
            return _update(connection, current, "read_weight", 0, actor, reason)

    def set_keyless_side(
        self, context: str, side: str, actor: str, reason: str
    ) -> int:
        """Where reads without a bucket key go while the weight is 1-99."""
        if side not in KEYLESS_SIDES:
            raise InvalidSetting(
                context, "keyless side", side, "it is 'monolith' or 'service'"
            )

        with self._changing() as connection:
            _require_context(connection, context)
            row = connection.execute(
                "SELECT side FROM keyless WHERE context = ?", (context,)
            ).fetchone()
            before = row[0] if row else MONOLITH
            if before == side:
                return _revision(connection)

            connection.execute(
                "INSERT INTO keyless (context, side) VALUES (?, ?) "
                "ON CONFLICT (context) DO UPDATE SET side = excluded.side",
                (context, side),
            )
            return _record(connection, actor, context, "keyless side", before, side,
                           reason)

    def set_shadow(
        self,
        context: str,
        percent: int,
        actor: str,
        reason: str,
        *,
        ignore_paths: Iterable[str] | None = None,
        ignore_headers: Iterable[str] | None = None,
        noise: bool | None = None,
        safe_writes: Iterable[str] | None = None,
    ) -> int:
        """Mirror `percent` % of the context's requests to the other side.

        Settings left as None keep their current value, an empty list
        clears one. `ignore_headers` are header names (HTTP tokens);
        `safe_writes` are "METHOD /rule" of the context's write routes that
        may be copied.
        """
        whole = isinstance(percent, int) and not isinstance(percent, bool)
        if not whole or not 0 <= percent <= 100:
            raise InvalidSetting(
                context, "shadow share", percent, "shares run 0-100 %"
            )

        with self._changing() as connection:
            _require_context(connection, context)
            before = _shadow_of(connection, context)
            after = dataclasses.replace(
                before,
                percent=percent,
                ignore_paths=(
                    before.ignore_paths if ignore_paths is None
                    else _checked(context, "shadow ignore path", ignore_paths,
                                  check_path)
                ),
                ignore_headers=(
                    before.ignore_headers if ignore_headers is None
                    else _checked(context, "shadow ignore header", ignore_headers,
                                  check_header)
                ),
                noise=before.noise if noise is None else noise,
                safe_writes=(
                    before.safe_writes if safe_writes is None
                    else _checked_writes(connection, context, safe_writes)
                ),
            )
            if after == before:
                return _revision(connection)

            connection.execute(
                "INSERT INTO shadows (context, settings) VALUES (?, ?) "
                "ON CONFLICT (context) DO UPDATE SET settings = excluded.settings",
                (context, json.dumps(after.as_json())),
            )
            return _record(connection, actor, context, "shadow", before.text(),
                           after.text(), reason)

    def set_slo(
        self, context: str, slo: Slo | None, actor: str, reason: str
    ) -> int:
        """The SLO the router holds the context's service to; None for none."""
        if slo is not None:
            _check_slo(context, slo)

        with self._changing() as connection:
            _require_context(connection, context)
            before = _slo_of(connection, context)
            if before == slo:
                return _revision(connection)

            if slo is None:
                connection.execute("DELETE FROM slos WHERE context = ?", (context,))
            else:
                connection.execute(
                    "INSERT INTO slos (context, settings) VALUES (?, ?) "
                    "ON CONFLICT (context) DO UPDATE SET settings = excluded.settings",
                    (context, json.dumps(dataclasses.asdict(slo))),
                )
            return _record(
                connection, actor, context, "slo",
                before.text() if before else None, slo.text() if slo else None,
                reason,
            )

    def set_override_secret(
        self, secret: str | None, actor: str, reason: str
    ) -> int:
        """The secret a tester's override must carry; only its hash is kept."""
        if secret is not None and len(secret) < 16:
            raise InvalidSetting(
                None, "override secret", f"{len(secret)} characters",
                "a secret has at least 16 characters",
            )

        digest = None if secret is None else _digest(secret)
        with self._changing() as connection:
            row = connection.execute(
                "SELECT value FROM options WHERE name = ?", (_OVERRIDE_SECRET,)
            ).fetchone()
            before = row[0] if row else None
            if before == digest:
                return _revision(connection)

            if digest is None:
                connection.execute(
                    "DELETE FROM options WHERE name = ?", (_OVERRIDE_SECRET,)
                )
            else:
                connection.execute(
                    "INSERT INTO options (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (_OVERRIDE_SECRET, digest),
                )
            return _record(
                connection, actor, None, "override secret",
                "set" if before else None, "set" if digest else None, reason,
            )

    # Rollouts ----------------------------------------------------------

    def start_rollout(
        self, context: str, steps: Iterable[int], every: float, actor: str,
        reason: str, *, pid: int | None = None, host: str | None = None,
    ) -> Rollout:
        """Record a new rollout of the context, walked by process `pid` on
        `host`, replacing a finished or stale one."""
        steps = tuple(steps)
        with self._changing() as connection:
            _require_context(connection, context)
            current = _rollout_of(connection, context)
            if current is not None and walker_gone(current):
                _end_stale(connection, current, actor)
            elif current is not None and current.active:
                walked = f", walked by {current.walker}" if current.pid else ""
                raise InvalidSetting(
                    context, "rollout", f"{current.state} at step "
                    f"{current.step + 1} of {len(current.steps)}{walked}",
                    "one rollout of a context at a time; stop it first "
                    f"(`migrate rollout stop {context}`)",
                )

            now = _now()
            connection.execute(
                "INSERT OR REPLACE INTO rollouts (context, steps, every, step, "
                "state, reason, actor, started_at, updated_at, walker_pid, "
                "walker_host) VALUES (?, ?, ?, -1, ?, ?, ?, ?, ?, ?, ?)",
                (context, json.dumps(steps), every, RUNNING, reason, actor, now,
                 now, pid, host),
            )
            rollout = _rollout_of(connection, context)
            assert rollout is not None
            return rollout

    def update_rollout(
        self,
        context: str,
        *,
        state: str,
        reason: str,
        step: int | None = None,
        only_if: Iterable[str] = ACTIVE_ROLLOUT_STATES,
        actor: str | None = None,
    ) -> Rollout | None:
        """Move an active rollout on; None (and no change) once it has ended,
        for instance because the router rolled it back meanwhile.

        With an `actor` (an operator pausing, resuming or stopping it) the
        change of state is a ledger row; the rollout's own steps between
        running and waiting are not."""
        if state not in ROLLOUT_STATES:
            raise InvalidSetting(
                context, "rollout state", state,
                f"it is one of {', '.join(ROLLOUT_STATES)}",
            )

        allowed = tuple(only_if)
        with self._changing() as connection:
            current = _rollout_of(connection, context)
            if current is None or current.state not in allowed:
                return None

            connection.execute(
                "UPDATE rollouts SET state = ?, reason = ?, step = ?, "
                "updated_at = ? WHERE context = ?",
                (state, reason, current.step if step is None else step, _now(),
                 context),
            )
            if actor is not None and state != current.state:
                _record(connection, actor, context, "rollout", current.state, state,
                        reason)
            return _rollout_of(connection, context)

    def rollout(self, context: str) -> Rollout | None:
        """The context's latest rollout, finished or not."""
        with self._reading() as connection:
            return _rollout_of(connection, context)

    def end_stale_rollouts(self, actor: str) -> tuple[Rollout, ...]:
        """End, as stopped and in the ledger, every active rollout whose
        walker is gone from this host; returns them as they ended."""
        with self._reading() as connection:
            stale = [r for r in _rollouts(connection) if walker_gone(r)]
        if not stale:
            return ()

        ended = []
        with self._changing() as connection:
            for seen in stale:
                current = _rollout_of(connection, seen.context)
                # Looked at again under the write lock: a new walk may
                # have begun since.
                if current is not None and walker_gone(current):
                    ended.append(_end_stale(connection, current, actor))
        return tuple(ended)

    def set_writer(self, context: str, writer: str, actor: str, reason: str) -> int:
        """Send the context's writes to `writer`: the monolith or its service."""
        with self._changing() as connection:
            current = _require_context(connection, context)
            allowed = (MONOLITH, current["service"])
            if writer not in allowed:
                raise InvalidWriter(context, writer, allowed)

            if writer == MONOLITH and _phase_of(connection, current) == FINISHED:
                raise PhaseRefused(
                    context, FINISHED, f"writer {writer}",
                    "a finished context is no longer hosted by the monolith",
                )

            return _update(connection, current, "writer", writer, actor, reason)

    def hold_writes(self, context: str, held: bool, actor: str, reason: str) -> int:
        """Make routers hold (or release) the context's writes."""
        return self._change(context, "writes_held", int(held), actor, reason)

    def _change(
        self, context: str, column: str, value: int, actor: str, reason: str
    ) -> int:
        with self._changing() as connection:
            current = _require_context(connection, context)
            return _update(connection, current, column, value, actor, reason)

    # Phases ------------------------------------------------------------

    def mark_synced(self, context: str, actor: str, reason: str) -> int:
        """Say the context's copy is backfilled and verified, so sync keeps
        it in step from now on: extracted -> syncing."""
        with self._changing() as connection:
            current = _require_context(connection, context)
            row = _phase_row(connection, current)
            if row["synced"]:
                return _revision(connection)

            connection.execute(
                "UPDATE phases SET synced = 1 WHERE context = ?", (context,)
            )
            return _record(connection, actor, context, "synced", "no", "yes", reason)

    def set_finished(self, context: str, actor: str, reason: str) -> int:
        """Say the monolith no longer hosts the context: writes moved ->
        finished. Refused in any other phase, and while writes are held."""
        with self._changing() as connection:
            current = _require_context(connection, context)
            phase = _phase_row(connection, current)["phase"]
            if phase == FINISHED:
                return _revision(connection)

            if phase != WRITES_MOVED:
                raise PhaseRefused(
                    context, phase, FINISHED,
                    "a context is finished only once its writes have moved "
                    "to its service",
                )

            if current["writes_held"]:
                raise PhaseRefused(
                    context, phase, FINISHED,
                    "its writes are held: a writer flip is in progress",
                )

            connection.execute(
                "UPDATE phases SET finished = 1 WHERE context = ?", (context,)
            )
            return _record(connection, actor, context, "finished", "no", "yes",
                           reason)

    def phase(self, context: str) -> str:
        """The context's phase now, one of PHASES."""
        with self._reading() as connection:
            return _phase_of(connection, _require_context(connection, context))

    # Reads -------------------------------------------------------------

    def revision(self) -> int:
        """The counter every change bumps; cheap enough to poll."""
        with self._connection() as connection:
            return _revision(connection)

    def revision_reader(self) -> RevisionReader:
        """A poller of the revision on one connection kept open: a read of
        a few microseconds, cheap enough to run on an event loop."""
        return RevisionReader(self.path)

    def snapshot(self) -> RoutingTable:
        """The whole routing table as of one revision."""
        with self._reading() as connection:
            revision = _revision(connection)
            backends = dict(connection.execute("SELECT name, url FROM backends"))
            contexts = {
                row["context"]: _context_state(connection, row)
                for row in connection.execute("SELECT * FROM contexts")
            }
            routes = [
                Route(row["method"], row["rule"], row["context"], row["bucket_key"])
                for row in connection.execute(
                    "SELECT * FROM routes ORDER BY context, rule, method"
                )
            ]
            route_weights = {
                (method, rule): weight
                for method, rule, weight in connection.execute(
                    "SELECT method, rule, weight FROM route_weights"
                )
            }
            secret = connection.execute(
                "SELECT value FROM options WHERE name = ?", (_OVERRIDE_SECRET,)
            ).fetchone()

        return RoutingTable.build(
            revision, backends, contexts, routes, route_weights,
            secret[0] if secret else None,
        )

    def status(self) -> dict[str, ContextStatus]:
        """Per context: service, weight, writer, held writes and routes."""
        table = self.snapshot()
        with self._reading() as connection:
            rollouts = {name: _rollout_of(connection, name) for name in table.contexts}
        statuses: dict[str, ContextStatus] = {}
        for name, state in sorted(table.contexts.items()):
            routes = tuple(r for r in table.routes if r.context == name)
            statuses[name] = ContextStatus(
                name, state.service, state.read_weight, state.writer,
                state.writes_held, state.salt, routes,
                {
                    r.name: table.route_weights[(r.method, r.rule)]
                    for r in routes
                    if (r.method, r.rule) in table.route_weights
                },
                state.keyless_side, state.shadow, state.slo, rollouts[name],
                state.phase,
            )
        return statuses

    def history(
        self, context: str | None = None, *, last: int | None = None
    ) -> tuple[LedgerEntry, ...]:
        """Ledger rows, oldest first; one context's, or all of them; only
        the `last` so many if given."""
        newest = "ORDER BY id DESC LIMIT ?" if last is not None else ""
        limit = () if last is None else (last,)
        with self._reading() as connection:
            if context is None:
                rows = connection.execute(
                    f"SELECT * FROM (SELECT * FROM ledger {newest}) ORDER BY id",
                    limit,
                )
            else:
                _require_context(connection, context)
                rows = connection.execute(
                    "SELECT * FROM (SELECT * FROM ledger WHERE context = ? "
                    f"{newest}) ORDER BY id",
                    (context, *limit),
                )
            return tuple(_ledger_entry(row) for row in rows)

    # Connections -------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # Autocommit at the driver level: transactions begin where we say.
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as connection:
            # One read transaction: every table as of the same revision.
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                connection.execute("COMMIT")

    @contextlib.contextmanager
    def _changing(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as connection:
            # IMMEDIATE takes the write lock first, so a read-check-write
            # cannot interleave with another process's change.
            connection.execute("BEGIN IMMEDIATE")
            last = connection.execute("SELECT max(id) FROM ledger").fetchone()[0]
            try:
                yield connection
                _settle_phases(connection, last or 0)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")


class RevisionReader:
    """Reads the revision counter over one open connection.

    In WAL mode a reader never waits for a writer, so a read is a few
    microseconds; a locked or unreadable file raises sqlite3.Error after
    at most one second.
    """

    def __init__(self, path: str):
        self._connection = sqlite3.connect(
            path, timeout=1, isolation_level=None, check_same_thread=False
        )

    def __call__(self) -> int:
        return _revision(self._connection)

    def close(self) -> None:
        self._connection.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _revision(connection: sqlite3.Connection) -> int:
    value: int = connection.execute("SELECT value FROM revision").fetchone()[0]
    return value


def _record(
    connection: sqlite3.Connection,
    actor: str,
    context: str | None,
    what: str,
    before: object,
    after: object,
    reason: str,
) -> int:
    connection.execute("UPDATE revision SET value = value + 1")
    revision = _revision(connection)
    connection.execute(
        "INSERT INTO ledger (at, actor, context, what, from_value, to_value, "
        "reason, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (_now(), actor, context, what, _text(before), _text(after), reason, revision),
    )
    return revision


def _text(value: object) -> str | None:
    if value is None:
        return None

    return str(value)


def _context_row(connection: sqlite3.Connection, context: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = connection.execute(
        "SELECT * FROM contexts WHERE context = ?", (context,)
    ).fetchone()
    return row


def _require_context(connection: sqlite3.Connection, context: str) -> sqlite3.Row:
    row = _context_row(connection, context)
    if row is None:
        known = [name for (name,) in connection.execute("SELECT context FROM contexts")]
        raise UnknownContext(context, known)

    return row


def _require_backend(connection: sqlite3.Connection, backend: str) -> None:
    known = [name for (name,) in connection.execute("SELECT name FROM backends")]
    if backend not in known:
        raise UnknownBackend(backend, known)


def _update(
    connection: sqlite3.Connection,
    current: sqlite3.Row,
    column: str,
    value: object,
    actor: str,
    reason: str,
) -> int:
    before = current[column]
    if before == value:
        return _revision(connection)

    # `column` is one of this module's own names, never caller input.
    connection.execute(
        f"UPDATE contexts SET {column} = ? WHERE context = ?",
        (value, current["context"]),
    )
    if column == "writes_held":
        before, value = bool(before), bool(value)
    return _record(connection, actor, current["context"], column, before, value, reason)


def _create_context(
    connection: sqlite3.Connection,
    context: str,
    service: str,
    salt: str | None,
    actor: str,
    reason: str,
) -> int:
    connection.execute(
        "INSERT INTO contexts (context, service, read_weight, writer, writes_held, "
        "salt) VALUES (?, ?, 0, ?, 0, ?)",
        (context, service, MONOLITH, context if salt is None else salt),
    )
    return _record(connection, actor, context, "service", None, service, reason)


def _update_context(
    connection: sqlite3.Connection,
    current: sqlite3.Row,
    service: str,
    salt: str | None,
    actor: str,
    reason: str,
) -> int:
    revision = _revision(connection)
    if current["service"] != service:
        if current["writer"] == current["service"]:
            raise ServiceStillWrites(current["context"], current["service"], service)

        revision = _update(connection, current, "service", service, actor, reason)

    if salt is not None:
        revision = _update(connection, current, "salt", salt, actor, reason)

    return revision


def _routes_of(
    context: str, routes: Iterable[tuple[str, str, str | None]]
) -> dict[tuple[str, str], Route]:
    wanted: dict[tuple[str, str], Route] = {}
    for method, rule, bucket_key in routes:
        route = Route(method.upper(), rule, context, bucket_key)
        check_route(route)
        earlier = wanted.get((route.method, rule))
        if earlier is not None and earlier != route:
            raise InvalidRule(
                rule,
                f"{route.method} is listed twice with bucket keys "
                f"'{earlier.bucket_key}' and '{bucket_key}'",
            )

        wanted[(route.method, rule)] = route
    return wanted


def _refuse_taken(
    connection: sqlite3.Connection,
    context: str,
    wanted: Mapping[tuple[str, str], Route],
) -> None:
    for method, rule, owner in connection.execute(
        "SELECT method, rule, context FROM routes WHERE context != ?", (context,)
    ):
        if (method, rule) in wanted:
            raise RouteTaken(method, rule, owner, context)


def _routes_in(connection: sqlite3.Connection, context: str) -> list[Route]:
    return [
        Route(method, rule, context, bucket_key)
        for method, rule, bucket_key in connection.execute(
            "SELECT method, rule, bucket_key FROM routes WHERE context = ?",
            (context,),
        )
    ]


def _routes_text(routes: Iterable[Route]) -> str:
    lines = sorted(
        f"{r.method} {r.rule}" + (f" [{r.bucket_key}]" if r.bucket_key else "")
        for r in routes
    )
    return "; ".join(lines)


def _context_state(connection: sqlite3.Connection, row: sqlite3.Row) -> ContextState:
    context = row["context"]
    keyless = connection.execute(
        "SELECT side FROM keyless WHERE context = ?", (context,)
    ).fetchone()
    return ContextState(
        context,
        row["service"],
        row["read_weight"],
        row["writer"],
        bool(row["writes_held"]),
        row["salt"],
        keyless[0] if keyless else MONOLITH,
        _shadow_of(connection, context),
        _slo_of(connection, context),
        _phase_of(connection, row),
    )


def _shadow_of(connection: sqlite3.Connection, context: str) -> ShadowSettings:
    row = connection.execute(
        "SELECT settings FROM shadows WHERE context = ?", (context,)
    ).fetchone()
    if row is None:
        return ShadowSettings()

    fields = json.loads(row[0])
    return ShadowSettings(
        fields["percent"],
        tuple(fields["ignore_paths"]),
        tuple(fields["ignore_headers"]),
        bool(fields["noise"]),
        tuple(fields["safe_writes"]),
    )


def _slo_of(connection: sqlite3.Connection, context: str) -> Slo | None:
    row = connection.execute(
        "SELECT settings FROM slos WHERE context = ?", (context,)
    ).fetchone()
    return None if row is None else Slo(**json.loads(row[0]))


def _rollout_of(connection: sqlite3.Connection, context: str) -> Rollout | None:
    row = connection.execute(
        "SELECT * FROM rollouts WHERE context = ?", (context,)
    ).fetchone()
    if row is None:
        return None

    return _rollout(row)


def _rollouts(connection: sqlite3.Connection) -> list[Rollout]:
    return [_rollout(row) for row in connection.execute("SELECT * FROM rollouts")]


def _rollout(row: sqlite3.Row) -> Rollout:
    return Rollout(
        row["context"], tuple(json.loads(row["steps"])), row["every"], row["step"],
        row["state"], row["reason"], row["actor"], row["started_at"],
        row["updated_at"], row["walker_pid"], row["walker_host"],
    )


def _end_stale(
    connection: sqlite3.Connection, rollout: Rollout, actor: str
) -> Rollout:
    reason = f"the process walking it ({rollout.walker}) is gone"
    connection.execute(
        "UPDATE rollouts SET state = ?, reason = ?, updated_at = ? "
        "WHERE context = ?",
        (STOPPED, reason, _now(), rollout.context),
    )
    _record(connection, actor, rollout.context, "rollout", rollout.state, STOPPED,
            reason)
    ended = _rollout_of(connection, rollout.context)
    assert ended is not None
    return ended


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Another user's process: it exists.
        return True

    # A zombie has ended; only its parent has not collected it yet.
    try:
        with open(f"/proc/{pid}/stat") as file:
            stat = file.read()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    def missing() -> list[tuple[str, str, str]]:
        return [
            (table, column, declared) for table, column, declared in _ADDED_COLUMNS
            if column not in {
                row["name"]
                for row in connection.execute(f"PRAGMA table_info({table})")
            }
        ]

    if not missing():
        return

    connection.execute("BEGIN IMMEDIATE")
    try:
        # Asked again under the write lock: another process may have added
        # them meanwhile.
        for table, column, declared in missing():
            # Names from this module's own table above, never caller input.
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declared}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _check_slo(context: str, slo: Slo) -> None:
    if not 0 <= slo.max_error_rate <= 1:
        raise InvalidSetting(context, "SLO error rate", slo.max_error_rate,
                             "a rate runs 0-1 (0 % to 100 %)")
    if slo.max_p99_ms <= 0:
        raise InvalidSetting(context, "SLO p99", slo.max_p99_ms,
                             "a latency is above 0 ms")
    if slo.window_seconds < 1:
        raise InvalidSetting(context, "SLO window", slo.window_seconds,
                             "a window is at least 1 s")
    if slo.window_seconds > 600:
        raise InvalidSetting(context, "SLO window", slo.window_seconds,
                             "a window is at most 600 s")
    if slo.min_requests < 1:
        raise InvalidSetting(context, "SLO minimum requests", slo.min_requests,
                             "a window needs at least 1 request to judge")


def _checked(
    context: str, setting: str, values: Iterable[str],
    check: Callable[[str], str | None],
) -> tuple[str, ...]:
    """The values, if `check` finds no problem with any; else the first
    problem, naming the setting and the value."""
    checked = []
    for value in values:
        problem = check(value)
        if problem is not None:
            raise InvalidSetting(context, setting, value, problem)
        checked.append(value)
    return tuple(checked)


def _checked_writes(
    connection: sqlite3.Connection, context: str, writes: Iterable[str]
) -> tuple[str, ...]:
    routes = {r.name: r for r in _routes_in(connection, context)}
    checked = []
    for name in writes:
        method, _, rule = name.strip().partition(" ")
        route = routes.get(f"{method.upper()} {rule.strip()}")
        if route is None or route.reads:
            writes_of = sorted(n for n, r in routes.items() if not r.reads)
            raise UnknownRoute(context, name, writes_of)
        checked.append(route.name)
    return tuple(sorted(checked))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _set_route_weight(
    connection: sqlite3.Connection,
    current: sqlite3.Row,
    route: str,
    weight: int,
    actor: str,
    reason: str,
) -> int:
    context = current["context"]
    routes = [r for r in _routes_in(connection, context) if r.reads]
    method, _, rule = route.strip().rpartition(" ")
    chosen = [
        r for r in routes
        if r.rule == rule.strip() and (not method or r.method == method.upper())
    ]
    if not chosen:
        raise UnknownRoute(context, route, sorted(r.name for r in routes))

    revision = _revision(connection)
    for r in chosen:
        row = connection.execute(
            "SELECT weight FROM route_weights WHERE method = ? AND rule = ?",
            (r.method, r.rule),
        ).fetchone()
        before = row[0] if row else current["read_weight"]
        if row is not None and before == weight:
            continue

        connection.execute(
            "INSERT INTO route_weights (method, rule, weight) VALUES (?, ?, ?) "
            "ON CONFLICT (method, rule) DO UPDATE SET weight = excluded.weight",
            (r.method, r.rule, weight),
        )
        revision = _record(connection, actor, context, f"read_weight {r.name}",
                           before, weight, reason)
    return revision


def _clear_route_weights(
    connection: sqlite3.Connection, context: str, actor: str, reason: str
) -> int:
    revision = _revision(connection)
    rows = connection.execute(
        "SELECT w.method, w.rule, w.weight FROM route_weights w JOIN routes r "
        "ON r.method = w.method AND r.rule = w.rule WHERE r.context = ?",
        (context,),
    ).fetchall()
    for method, rule, weight in rows:
        connection.execute(
            "DELETE FROM route_weights WHERE method = ? AND rule = ?", (method, rule)
        )
        revision = _record(connection, actor, context, f"read_weight {method} {rule}",
                           weight, "context's", reason)
    return revision


def _drop_weights_of_removed(
    connection: sqlite3.Connection,
    context: str,
    wanted: Mapping[tuple[str, str], Route],
) -> None:
    for method, rule in connection.execute(
        "SELECT method, rule FROM routes WHERE context = ?", (context,)
    ).fetchall():
        if (method, rule) not in wanted:
            connection.execute(
                "DELETE FROM route_weights WHERE method = ? AND rule = ?",
                (method, rule),
            )


def _ledger_entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        row["id"],
        row["at"],
        row["actor"],
        row["context"],
        row["what"],
        row["from_value"],
        row["to_value"],
        row["reason"],
        row["revision"],
    )


def _phase_of(connection: sqlite3.Connection, current: sqlite3.Row) -> str:
    row = connection.execute(
        "SELECT phase FROM phases WHERE context = ?", (current["context"],)
    ).fetchone()
    if row is None:
        # A store written before phases were kept: derive it as it stands.
        return _derived_phase(connection, current, synced=False, finished=False)

    phase: str = row[0]
    return phase


def _phase_row(connection: sqlite3.Connection, current: sqlite3.Row) -> sqlite3.Row:
    """The context's row of `phases`, made if the context has none yet."""
    context = current["context"]
    row: sqlite3.Row | None = connection.execute(
        "SELECT * FROM phases WHERE context = ?", (context,)
    ).fetchone()
    if row is not None:
        return row

    connection.execute(
        "INSERT INTO phases (context, phase) VALUES (?, ?)",
        (context, _derived_phase(connection, current, synced=False, finished=False)),
    )
    made: sqlite3.Row = connection.execute(
        "SELECT * FROM phases WHERE context = ?", (context,)
    ).fetchone()
    return made


def _derived_phase(
    connection: sqlite3.Connection, current: sqlite3.Row, *, synced: bool,
    finished: bool,
) -> str:
    """The furthest phase the context's state shows; a phase is left as
    soon as what made it is undone."""
    context = current["context"]
    if finished:
        return FINISHED

    if current["writer"] == current["service"]:
        return WRITES_MOVED

    routed = connection.execute(
        "SELECT 1 FROM route_weights w JOIN routes r "
        "ON r.method = w.method AND r.rule = w.rule "
        "WHERE r.context = ? AND w.weight > 0 LIMIT 1",
        (context,),
    ).fetchone()
    if current["read_weight"] > 0 or routed is not None:
        return SHIFTING_READS

    if _shadow_of(connection, context).percent > 0:
        return SHADOW

    return SYNCING if synced else EXTRACTED


def _settle_phases(connection: sqlite3.Connection, after_row: int) -> None:
    """Bring the phase of every context this transaction changed (its
    ledger rows come after `after_row`) up to date, ledgered with the
    revision, actor and reason of its last change."""
    last: dict[str, tuple[str, str]] = {}
    for context, actor, reason in connection.execute(
        "SELECT context, actor, reason FROM ledger "
        "WHERE id > ? AND context IS NOT NULL AND what != 'phase' ORDER BY id",
        (after_row,),
    ):
        last[context] = (actor, reason)

    for context, (actor, reason) in last.items():
        current = _context_row(connection, context)
        if current is None:
            continue

        row = connection.execute(
            "SELECT * FROM phases WHERE context = ?", (context,)
        ).fetchone()
        before = None if row is None else row["phase"]
        after = _derived_phase(
            connection, current,
            synced=bool(row and row["synced"]), finished=bool(row and row["finished"]),
        )
        if after == before:
            continue

        connection.execute(
            "INSERT INTO phases (context, phase) VALUES (?, ?) "
            "ON CONFLICT (context) DO UPDATE SET phase = excluded.phase",
            (context, after),
        )
        # The phase moves with the change that moved it: same revision.
        connection.execute(
            "INSERT INTO ledger (at, actor, context, what, from_value, to_value, "
            "reason, revision) VALUES (?, ?, ?, 'phase', ?, ?, ?, ?)",
            (_now(), actor, context, before, after, reason, _revision(connection)),
        )
