"""What the dashboard shows, gathered from the router and the system around it.

Live figures come from the router's own counters: answers, server errors
and latency histograms per (context, backend), and reads that fell back to
the monolith. Those count since start, so the overview keeps a snapshot of
them every second, on a timer of its own (`Overview.start`), and
subtracts the one taken a window ago (60 s): a rate is over the last
minute, not since the router started nor since someone last looked. The
span actually covered is reported with the figures: shorter just after
start, and at most a second or so longer than the window otherwise. The
timer copies a few counters once a second; a request pays nothing for it.

The slow facts are read off the event loop (`asyncio.to_thread`) and each
is kept for a few seconds (5 s), so a page that polls every two seconds
costs one read of each every five: the contracts gate's answer
(`can_i_deploy`, as `migrate can-i-deploy` gives it), the last parity
check kept by extraction, `migrate backfill` or `migrate verify`, sync
lag each way (as `migrate status` counts it) and, per declared queue, its
depth and dead letters (as the emulator or SQS counts them). A fact that
cannot be read is `unknown`, with why: a router run without the system's
settings, a database that is not there, an emulator that does not answer.

The overview changes nothing anywhere; in particular it never creates a
database file, a queue or a topic to look at it.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.router.proxy import UNMATCHED, Latency
from migrate.router.state import PHASES, ContextStatus, LedgerEntry, walker_gone

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from migrate.router.proxy import Router
    from migrate.settings import Settings
    from migrate.system import System

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
SAMPLE_SECONDS = 1.0
KEPT_SECONDS = 5.0
LEDGER_ROWS = 15
SHADOW_SAMPLES = 5
UNKNOWN = "unknown"

_Counts = tuple[int, int, tuple[int, ...]]


@dataclasses.dataclass(frozen=True)
class BackendRates:
    """One backend's answers for one context over the recent window."""

    context: str
    backend: str
    requests: int
    errors: int
    per_second: float
    error_rate: float | None
    p50_ms: float | None
    p99_ms: float | None


class RecentRates:
    """Windowed rates over the router's cumulative latency counters."""

    def __init__(self, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.window = window
        self._clock = clock
        # The first snapshot is the router's start: every counter at zero.
        self._samples: collections.deque[
            tuple[float, dict[tuple[str, str], _Counts], dict[str, int]]
        ] = collections.deque([(clock(), {}, {})])

    def sample(
        self, latency: Mapping[tuple[str, str], Latency],
        fallbacks: Mapping[str, int],
    ) -> None:
        """Keep the counters as they are now, unless a snapshot was kept
        less than a second ago. Called every second, it keeps a baseline
        about a window old at hand, however rarely anyone looks."""
        self._keep(self._clock(), _counts(latency), fallbacks)

    def rates(
        self, latency: Mapping[tuple[str, str], Latency],
        fallbacks: Mapping[str, int],
    ) -> tuple[float, list[BackendRates], dict[str, int]]:
        """(seconds covered, rates per context and backend, fallbacks per
        context) over the window ending now."""
        now = self._clock()
        current = _counts(latency)
        started, before, fallen_before = self._baseline(now)
        self._keep(now, current, fallbacks)

        span = max(now - started, 1e-9)
        found = [
            _rates(context, backend, counts, before.get((context, backend)), span)
            for (context, backend), counts in sorted(current.items())
        ]
        fallen = {
            context: count - fallen_before.get(context, 0)
            for context, count in fallbacks.items()
        }
        return span, [r for r in found if r.requests], fallen

    def _baseline(
        self, now: float
    ) -> tuple[float, dict[tuple[str, str], _Counts], dict[str, int]]:
        """The newest snapshot at least a window old, else the oldest."""
        chosen = self._samples[0]
        for sample in self._samples:
            if now - sample[0] < self.window:
                break
            chosen = sample
        return chosen

    def _keep(self, now: float, counts: dict[tuple[str, str], _Counts],
              fallbacks: Mapping[str, int]) -> None:
        if now - self._samples[-1][0] >= SAMPLE_SECONDS:
            self._samples.append((now, counts, dict(fallbacks)))
        self._trim(now)

    def _trim(self, now: float) -> None:
        # Keep one snapshot older than the window: the next baseline.
        while len(self._samples) > 1 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()


def _counts(
    latency: Mapping[tuple[str, str], Latency],
) -> dict[tuple[str, str], _Counts]:
    return {
        key: (seen.count, seen.errors, tuple(seen.buckets))
        for key, seen in list(latency.items())
    }


def _rates(
    context: str, backend: str, now: _Counts, before: _Counts | None, span: float
) -> BackendRates:
    count, errors, buckets = now
    base_count, base_errors, base_buckets = before or (0, 0, (0,) * len(buckets))
    seen = Latency()
    seen.buckets = [a - b for a, b in zip(buckets, base_buckets, strict=True)]
    seen.count = count - base_count
    seen.errors = errors - base_errors
    p50, p99 = seen.quantile(0.5), seen.quantile(0.99)
    return BackendRates(
        context, backend, seen.count, seen.errors, seen.count / span,
        seen.errors / seen.count if seen.count else None,
        None if p50 is None else p50 * 1000,
        None if p99 is None else p99 * 1000,
    )


class _Kept:
    """Slow facts read off the loop, each kept `ttl` seconds."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._values: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self) -> None:
        self._values.clear()

    async def get(self, key: str, read: Callable[[], Any]) -> Any:
        lock = self._locks.setdefault(key, asyncio.Lock())
        # One read at a time per fact: a slow one is not started twice.
        async with lock:
            kept = self._values.get(key)
            if kept is not None and self._clock() - kept[0] < self.ttl:
                return kept[1]

            value = await asyncio.to_thread(_unless_failing, key, read)
            self._values[key] = (self._clock(), value)
            return value


def _unless_failing(key: str, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception as error:
        log.warning("the dashboard cannot read %s: %s", key, error)
        return unknown(f"{type(error).__name__}: {error}")


def unknown(why: str) -> dict[str, Any]:
    return {"state": UNKNOWN, "why": why}


def system_settings(state_path: str) -> tuple[Settings | None, str]:
    """The system's settings as this process's environment gives them, if
    they are the ones of the router's state file; else None and why."""
    from migrate.errors import ConfigurationError
    from migrate.settings import Settings

    try:
        settings = Settings.from_env()
    except ConfigurationError as error:
        return None, str(error)

    if Path(state_path).resolve() != settings.state_path.resolve():
        return None, (
            f"the router's state file {state_path} is not the system's "
            f"({settings.state_path}); run the router under `migrate up`, or "
            "set MIGRATE_HOME to the state file's folder"
        )
    return settings, ""


class Overview:
    """Everything the dashboard shows, as one JSON-ready dict."""

    def __init__(self, router: Router, settings: Settings | None, unknown_why: str,
                 *, rates: RecentRates | None = None, kept: float = KEPT_SECONDS):
        self.router = router
        self.settings = settings
        self.unknown_why = unknown_why
        self.recent = rates or RecentRates()
        self._kept = _Kept(kept)
        self._engines: dict[str, Engine] = {}
        self._system: System | None = None
        self._sampling: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Keep snapshots of the router's counters every second, on the
        running loop, until `stop`."""
        if self._sampling is None:
            self._sampling = asyncio.get_running_loop().create_task(
                self._keep_sampling(), name="overview-rates"
            )

    async def stop(self) -> None:
        sampling, self._sampling = self._sampling, None
        if sampling is not None:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)

    async def _keep_sampling(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            stats = self.router.stats
            self.recent.sample(stats.latency, stats.fallbacks)

    def forget(self) -> None:
        """Read every slow fact afresh next time: after an operator's move
        (or a gate's refusal of one) the page should not show older news."""
        self._kept.forget()

    async def gather(self) -> dict[str, Any]:
        router = self.router
        store = router.store
        statuses, ledger = await asyncio.to_thread(
            lambda: (store.status(), store.history(last=LEDGER_ROWS))
        )
        span, rates, fallbacks = self.recent.rates(router.stats.latency,
                                                   router.stats.fallbacks)
        contexts = []
        for name, status in statuses.items():
            contexts.append(await self._context(status, fallbacks.get(name, 0)))
        return {
            "revision": router.current().revision,
            "phases": list(PHASES),
            "window_seconds": round(span, 1),
            "contexts": contexts,
            "routes": _routes(statuses),
            "backends": [
                {**dataclasses.asdict(r), "context": _context_name(r.context)}
                for r in rates
            ],
            "queues": await self._kept.get("queues", self._queues),
            "ledger": [_entry(e) for e in reversed(ledger)],
        }

    async def _context(self, status: ContextStatus, fallbacks: int) -> dict[str, Any]:
        name = status.name
        verdict = self.router.verdict(name)
        rollout = status.rollout
        return {
            "name": name,
            "phase": status.phase,
            "service": status.service,
            "read_weight": status.read_weight,
            "route_weights": dict(status.route_weights),
            "writer": status.writer,
            "writes_held": status.writes_held,
            "shadow": status.shadow.text(),
            "slo": status.slo.text() if status.slo else None,
            "verdict": verdict.as_json() if verdict else None,
            "rollout": None if rollout is None else {
                "state": rollout.state,
                "steps": list(rollout.steps),
                # From 1, as `migrate status` counts; 0 before the first.
                "step": rollout.step + 1,
                "reason": rollout.reason,
                "active": rollout.active and not walker_gone(rollout),
                # Shown, not ended: the overview changes nothing.
                "walker_gone": walker_gone(rollout),
            },
            "fallbacks": fallbacks,
            "shadow_results": self._shadow(name),
            "contracts": await self._kept.get(
                f"contracts {name}", lambda: self._contracts(name)
            ),
            "parity": await self._kept.get(
                f"parity {name}", lambda: self._parity(name)
            ),
            "sync_lag": await self._kept.get(f"lag {name}", lambda: self._lag(name)),
        }

    def _shadow(self, context: str) -> dict[str, Any]:
        from migrate.router.admin import shadow_results

        found = shadow_results(self.router, context)
        found["samples"] = found["samples"][-SHADOW_SAMPLES:]
        return found

    # The slow facts, each run in a thread --------------------------------

    def _contracts(self, context: str) -> dict[str, Any]:
        from migrate.contracts.gate import can_i_deploy

        if self.settings is None:
            return unknown(self.unknown_why)

        answer = can_i_deploy(context, self.settings)
        return {
            "state": "yes" if answer.deployable else "no",
            "reasons": list(answer.reasons),
            "kept": list(answer.kept),
        }

    def _parity(self, context: str) -> dict[str, Any]:
        from migrate.errors import UnreadableParityRecord
        from migrate.sync.parity_records import last_parity

        if self.settings is None:
            return unknown(self.unknown_why)

        try:
            record = last_parity(self.settings, context)
        except UnreadableParityRecord as error:
            return unknown(str(error))
        if record is None:
            return unknown(f"no parity check of {context} was kept; run "
                           f"`migrate verify {context}`")
        return {
            "state": "in parity" if record.ok else "differs",
            "checked_at": record.checked_at,
            "by": record.by,
            "differences": list(record.differences),
        }

    def _lag(self, context: str) -> dict[str, Any]:
        from migrate.sync.lag import lags

        if self.settings is None:
            return unknown(self.unknown_why)

        found = lags(
            context,
            self._engine(self.settings.monolith_url),
            self._engine(self.settings.service_url(context)),
        )
        return {
            "state": "known",
            **{direction: dataclasses.asdict(lag) for direction, lag in found.items()},
        }

    def _queues(self) -> dict[str, Any]:
        from migrate.messaging.clients import glance_config, sqs_client
        from migrate.observe.readings import queue_depths
        from migrate.system import System, topology

        if self.settings is None:
            return unknown(self.unknown_why)

        if self._system is None:
            self._system = System(self.settings)
        system = self._system
        extracted = [e.context for e in system.extractions()]
        declared = topology(system.manifest, extracted).queues
        sqs = sqs_client(self.settings.endpoint_url, config=glance_config())
        found = queue_depths(sqs, declared)
        app = system.manifest.name
        return {
            "state": "known",
            "queues": [
                {
                    **dataclasses.asdict(depth),
                    "context": next(
                        (c for c in system.manifest.contexts
                         if depth.queue.startswith(f"{app}-{c}-")), None,
                    ),
                }
                for depth in found
            ],
        }

    def _engine(self, url: str) -> Engine:
        from sqlalchemy.engine import make_url

        from migrate.kernel.sql import create_engine

        if url.startswith("sqlite"):
            database = make_url(url).database
            # Connecting would create the file: a look must not.
            if not database or not os.path.exists(database):
                raise FileNotFoundError(f"no database at {url}")

        engine = self._engines.get(url)
        if engine is None:
            engine = self._engines[url] = create_engine(url)
        return engine


def _context_name(context: str) -> str:
    return "(other routes)" if context == UNMATCHED else context


def _routes(statuses: Mapping[str, ContextStatus]) -> list[dict[str, Any]]:
    routes = []
    for status in statuses.values():
        for route in status.routes:
            own = status.route_weights.get(route.name)
            routes.append({
                "route": route.name,
                "owner": status.name,
                "reads": route.reads,
                "weight": (own if own is not None else status.read_weight)
                if route.reads else None,
                "own_weight": own is not None,
                "writer": status.writer,
                "bucket_key": route.bucket_key,
            })
    return routes


def _entry(entry: LedgerEntry) -> dict[str, Any]:
    return dataclasses.asdict(entry)
