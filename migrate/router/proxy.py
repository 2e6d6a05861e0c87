"""The strangler-fig router: one HTTP front door for the monolith and services.

Every request is answered by exactly one backend, chosen from a routing
table held in memory:

- a request that matches no registered route goes to the monolith;
- a read (GET, HEAD, OPTIONS) of a route goes to the context's service when
  its bucket key falls on the service side of the route's read weight (see
  `buckets`), else to the monolith. Weight 0 is always the monolith and 100
  always the service; between the two, a read without a key goes to the
  context's keyless side (the monolith unless configured), never to a
  random one;
- a tester's read carrying `X-Migrate-Side: service:<secret>` (or the
  cookie `migrate_side` with the same value; `monolith:` for the other
  way) goes to that side, if the secret is the one the operator set;
  without it the override is ignored, counted and logged;
- a write goes to the context's writer. While the context's writes are held
  (a writer flip in progress) it waits, up to the hold timeout (30 s), for
  the hold to lift, then goes to whoever writes by then; still held, it gets
  503 `writes_held`. A writer that answers 503 with `X-Migrate-Not-Writer`
  refused before changing anything, so the write is sent again to the
  current writer, with a growing pause, until the hold timeout.

A finished context (`set_finished`: the monolith no longer hosts it) is
its service's alone: every read and write of it goes there, whatever the
weight or a tester's override says, and a read the service fails gets a
502 rather than the monolith's answer.

When the service fails a read (refused connection, timeout, 5xx) the
monolith answers it instead; after five failures in a row the service's
circuit opens and its reads go straight to the monolith for five seconds,
then one read tries it again. A read that a replica answers 404 (the
side that is not the context's writer may not have applied the writer's
latest change yet) is asked of the writer and counted as a replica miss,
so a client always finds what it has just created. A write that fails is
sent again (to the writer of the moment, for up to 30 s) only when it
carries an `Idempotency-Key`, which the backends honour; any other write
is never sent twice, except after a not-the-writer refusal.

Each context may have an SLO (see `slo`): the router judges its service's
answers over the SLO's window twice a second, and on a breach sets the
context's read weight to 0 in the state store at once, with the figures
as the ledger's reason, whatever a rollout of it is doing; a rollout sees
it and stops. A context in shadow mode has a share of its requests copied
to the other side and the answers compared (see `shadow`); copies carry
`X-Migrate-Shadow: 1`, keep the client's Host and X-Forwarded-For, wait in
a bounded queue (dropped and counted when it is full) and are sent after
the client has its answer.

The table is read from the state store at start, and a background task
polls the store's revision every 200 ms; a new revision is loaded off the
event loop and swapped in with one assignment. A request reads the table
once, so it never sees half of a change; no request touches SQLite.

Proxying keeps the client's Host and body, drops hop-by-hop headers (and any
header named in Connection) both ways, appends the client's address to
X-Forwarded-For, sets X-Forwarded-Proto and X-Forwarded-Host, and adds
`X-Migrate-Backend` naming who answered (`router` for the router's own
answers). See `http1` for bodies, limits, timeouts and what is refused.

`GET /_router/health` and `GET /_router/stats` are answered by the router;
the token-protected admin API is in `admin`.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import dataclasses
import hashlib
import hmac
import itertools
import json
import logging
import os
import random
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from migrate.observe.tracing import FLUSH_SECONDS, RequestSegment, RequestTracer
from migrate.router import shadow as diff
from migrate.router.buckets import boundary, murmur2
from migrate.router.http1 import (
    MAX_HEAD,
    Answer,
    ClientTimeouts,
    Headers,
    Request,
    Upstream,
    UpstreamAnswer,
    UpstreamError,
    serve_http,
    settle_memory,
)
from migrate.router.slo import BREACH, Verdict, Window
from migrate.router.state import (
    FINISHED,
    MONOLITH,
    RevisionReader,
    RoutingTable,
    StateStore,
)
from migrate.router.table import Route

log = logging.getLogger(__name__)

MiB = 1024 * 1024
BACKEND_HEADER = "X-Migrate-Backend"
NOT_WRITER_HEADER = "X-Migrate-Not-Writer"
SHADOW_HEADER = "X-Migrate-Shadow"
OVERRIDE_HEADER = "X-Migrate-Side"
OVERRIDE_COOKIE = "migrate_side"
ROUTER = "router"
UNMATCHED = "(unmatched)"
# The router's own answers; a set, as a path's hash is then computed once
# for this test and the routing look-up after it.
_OWN_PATHS = frozenset({"/_router/health", "/_router/stats"})

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        # Recomputed from the body actually sent.
        b"content-length",
    }
)
# The router has read the whole body already; asking the backend whether to
# send it would only cost a round trip.
_NOT_FORWARDED = _HOP_BY_HOP | {
    b"expect", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-for",
}
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_RETRIED_STATUSES = frozenset({500, 502, 503, 504})
_OWN = {b"X-Migrate-Backend": b"router"}
_JSON = (b"Content-Type", b"application/json")
# Hashes of recent header and cookie keys, and the paths a plan has found,
# per method; each cleared when it grows past this.
_HASHES_KEPT = 100_000
_PATHS_KEPT = 100_000


@dataclasses.dataclass(frozen=True)
class Settings:
    """The router's knobs; times in seconds, sizes in bytes."""

    hold_timeout: float = 30.0
    upstream_timeout: float = 10.0
    # A keyed write waits for a restarting writer as long as a held write
    # waits for a flip: a service takes seconds to start on a busy host.
    retry_timeout: float = 30.0
    max_body: int = 10 * MiB
    max_head: int = MAX_HEAD
    poll_interval: float = 0.2
    hold_poll: float = 0.05
    connections: int = 512
    idle_timeout: float = 15.0
    client_timeouts: ClientTimeouts = ClientTimeouts()
    breaker_failures: int = 5
    breaker_cooldown: float = 5.0
    slo_interval: float = 0.5
    shadow_workers: int = 4
    shadow_queue: int = 256
    shadow_max_body: int = MiB
    tracing: bool = False
    trace_per_second: int = 1
    trace_rate: float = 0.05
    trace_address: str | None = None


# Upper bounds of the latency buckets, in seconds (Prometheus's defaults,
# with finer steps below 5 ms, where a proxy's own time is measured).
LATENCY_BOUNDS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)


class Latency:
    """Answers of one route group from one backend: a latency histogram
    (cumulative buckets, as Prometheus reads them), the sum, the count,
    and the answers that were server errors."""

    __slots__ = ("buckets", "sum", "count", "errors")

    def __init__(self) -> None:
        # One slot per bound, and a last one for +Inf.
        self.buckets = [0] * (len(LATENCY_BOUNDS) + 1)
        self.sum = 0.0
        self.count = 0
        self.errors = 0

    def observe(self, seconds: float, failed: bool) -> None:
        self.buckets[bisect.bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self.sum += seconds
        self.count += 1
        if failed:
            self.errors += 1

    def cumulative(self) -> list[int]:
        return list(itertools.accumulate(self.buckets))

    def quantile(self, q: float) -> float | None:
        """The bucket bound under which `q` of the answers fall, in seconds;
        None without answers (the last bound when beyond it)."""
        if not self.count:
            return None

        rank = q * self.count
        for bound, seen in zip(LATENCY_BOUNDS, self.cumulative(), strict=False):
            if seen >= rank:
                return bound
        return LATENCY_BOUNDS[-1]

    def as_json(self) -> dict[str, Any]:
        p50, p99 = self.quantile(0.5), self.quantile(0.99)
        return {
            "count": self.count,
            "errors": self.errors,
            "sum_seconds": self.sum,
            "p50_ms": None if p50 is None else p50 * 1000,
            "p99_ms": None if p99 is None else p99 * 1000,
            "buckets": dict(
                zip([*map(str, LATENCY_BOUNDS), "+Inf"], self.cumulative(),
                    strict=True)
            ),
        }


class Stats:
    """Counters since start; plain dicts, cheap on the hot path."""

    def __init__(self) -> None:
        # Answer times per (context, backend), from request to answer; the
        # router's own answers (refusals) under the backend `router`.
        self.latency: dict[tuple[str, str], Latency] = {}
        self.errors: dict[str, int] = {}
        self.fallbacks: dict[str, int] = {}
        self.replica_misses: dict[str, int] = {}
        self.held_writes: dict[str, int] = {}
        self.not_writer_retries: dict[str, int] = {}
        self.write_retries: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self.overrides: dict[str, int] = {}
        self.overrides_ignored = 0
        self.breaker_skips: dict[str, int] = {}
        self.rollbacks: dict[str, int] = {}
        self.shadow: dict[str, dict[str, int]] = {}
        self.shadow_samples: collections.deque[dict[str, Any]] = (
            collections.deque(maxlen=50)
        )

    @property
    def answers(self) -> dict[tuple[str, str], int]:
        """Answers relayed per (context, backend): every answer is timed,
        so the latency counts are these counts, at no cost of their own."""
        return {
            key: seen.count for key, seen in self.latency.items()
            if key[1] != ROUTER
        }

    @property
    def requests(self) -> dict[str, dict[str, int]]:
        """Answers per context, then per backend."""
        nested: dict[str, dict[str, int]] = {}
        for (context, backend), count in self.answers.items():
            nested.setdefault(context, {})[backend] = count
        return nested

    @staticmethod
    def bump(counter: dict[str, int], name: str) -> None:
        counter[name] = counter.get(name, 0) + 1

    def shadowed(self, route: str, outcome: str) -> None:
        counts = self.shadow.get(route)
        if counts is None:
            counts = self.shadow[route] = dict.fromkeys(
                (*diff.OUTCOMES, "dropped", "skipped"), 0
            )
        counts[outcome] += 1

    def latency_of(self, context: str, backend: str) -> Latency:
        """The histogram of one context's answers from one backend."""
        key = (context, backend)
        found = self.latency.get(key)
        if found is None:
            found = self.latency[key] = Latency()
        return found

    def as_json(self) -> dict[str, Any]:
        latency: dict[str, dict[str, Any]] = {}
        for (context, backend), seen in self.latency.items():
            latency.setdefault(context, {})[backend] = seen.as_json()
        return {
            "latency": latency,
            "requests": self.requests,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "replica_misses": self.replica_misses,
            "held_writes": self.held_writes,
            "not_writer_retries": self.not_writer_retries,
            "write_retries": self.write_retries,
            "refused": self.refused,
            "overrides": self.overrides,
            "overrides_ignored": self.overrides_ignored,
            "breaker_skips": self.breaker_skips,
            "rollbacks": self.rollbacks,
            "shadow": self.shadow,
        }


class Breaker:
    """A backend's circuit: closed, open after failures in a row, half open
    (one trial request) after the cooldown."""

    __slots__ = ("failures", "opened_at", "trial", "threshold", "cooldown")

    def __init__(self, threshold: int, cooldown: float):
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False
        self.threshold = threshold
        self.cooldown = cooldown

    def allows(self, now: float) -> bool:
        if self.opened_at is None:
            return True

        if self.trial or now - self.opened_at < self.cooldown:
            return False

        self.trial = True
        return True

    def succeeded(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.trial = False

    def failed(self, now: float) -> None:
        self.failures += 1
        if self.trial or self.failures >= self.threshold:
            self.opened_at = now
        self.trial = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"

        return "half-open" if self.trial else "open"


class _Refused(Exception):
    """A request the router answers itself, with a status and error code."""

    def __init__(self, status: int, code: str, message: str, **details: Any):
        super().__init__(message)
        self.status = status
        self.body = {"error": code, "message": message, **details}


class _Lane:
    """One route compiled against one table: everything a request needs."""

    __slots__ = (
        "route", "name", "context", "reads", "service", "weight", "limit",
        "prefix", "key_kind", "key_name", "key_group", "keyless_service",
        "shadow_share", "shadow_writes", "rules", "noise", "writer", "finished",
        "answered",
    )

    def __init__(self, route: Route, parameters: tuple[str, ...],
                 table: RoutingTable):
        state = table.contexts.get(route.context)
        self.route = route
        self.name = route.name
        self.context = route.context
        self.reads = route.reads
        self.service = state.service if state else MONOLITH
        self.writer = state.writer if state else MONOLITH
        # The monolith no longer hosts a finished context: its service
        # answers every request of it, whatever the weight, with no fallback.
        self.finished = bool(state and state.phase == FINISHED)
        self.weight = table.weight_of(route) if state else 0
        if self.finished:
            self.weight = 100
        self.limit = boundary(self.weight)
        self.prefix = (state.salt if state else route.context).encode()
        source = route.key_source
        self.key_kind, self.key_name = source if source else ("", "")
        # The regex group that holds a path-parameter key; 0 for none.
        self.key_group = (
            parameters.index(self.key_name) + 1
            if self.key_kind == "param" else 0
        )
        self.keyless_service = bool(state and state.keyless_side == "service")
        shadow = state.shadow if state else diff.ShadowSettings()
        self.shadow_share = shadow.percent / 100
        self.shadow_writes = route.name in shadow.safe_writes
        self.rules = diff.Rules(shadow.ignore_paths, shadow.ignore_headers)
        self.noise = shadow.noise
        # The histograms of this route's answers by backend, from `Stats`.
        self.answered: dict[str, Latency] = {}

    def side_of(self, found: re.Match[str]) -> bool | None:
        """Whether a read of this path goes to the service, when the path
        alone decides it; None when each request's headers do."""
        if not self.reads:
            return None

        if self.weight <= 0:
            return False

        if self.weight >= 100:
            return True

        if self.key_group:
            key = found.group(self.key_group).encode()
            return murmur2(self.prefix + key) < self.limit

        return None


_Found = tuple[_Lane | None, bool | None]
_UNROUTED: _Found = (None, None)


class _Plan:
    """A routing table compiled for one revision: per method, its routes'
    regexes with their lanes, most specific first; and what each path
    recently asked for was found to be."""

    def __init__(self, table: RoutingTable):
        self.table = table
        self.lanes: dict[str, tuple[tuple[re.Pattern[str], _Lane], ...]] = {
            method: tuple(
                (pattern, _Lane(route, parameters, table))
                for pattern, parameters, route in candidates
            )
            for method, candidates in table.matcher.candidates().items()
        }
        # Histograms of answers to requests no route matched, by backend.
        self.unmatched: dict[str, Latency] = {}
        # Per method, per path: its lane and, where the path decides it, its
        # side. Matching and hashing a path once per table is what keeps
        # routing to a dictionary look-up a request.
        self.found: dict[str, dict[str, _Found]] = {}

    def find(self, method: str, path: str) -> _Found:
        """The lane of a request (None: no route) and its side if known."""
        seen = self.found.get(method)
        if seen is None:
            seen = self.found[method] = {}
        elif len(seen) >= _PATHS_KEPT:
            seen.clear()
        found = _UNROUTED
        # The lanes are in order of specificity: the first match wins.
        for pattern, lane in self.lanes.get(method, ()):
            matched = pattern.fullmatch(path)
            if matched is not None:
                found = (lane, lane.side_of(matched))
                break
        seen[path] = found
        return found


class _ShadowJob:
    __slots__ = ("lane", "method", "target", "head", "body", "primary",
                 "candidate", "observed")

    def __init__(self, lane: _Lane, request: Request, head: bytes, primary: str,
                 candidate: str, observed: diff.Observed):
        self.lane = lane
        self.method = request.method
        self.target = request.target
        self.head = head
        self.body = request.body
        self.primary = primary
        self.candidate = candidate
        self.observed = observed


class Router:
    """Routes requests by the current table; one instance per process."""

    def __init__(self, store: StateStore, settings: Settings | None = None):
        self.store = store
        self.settings = settings or Settings()
        self.stats = Stats()
        self.table: RoutingTable | None = None
        self.tracer: RequestTracer | None = None
        self.windows: dict[str, Window] = {}
        self.verdicts: dict[str, Verdict] = {}
        self.breakers: dict[str, Breaker] = {}
        self._plan: _Plan | None = None
        self._upstreams: dict[str, Upstream] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._refreshing: asyncio.Lock | None = None
        self._shadow_queue: asyncio.Queue[_ShadowJob] | None = None
        self._random = random.Random()
        self._hashes: dict[bytes, int] = {}
        self._revision: RevisionReader | None = None

    # Lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        self._refreshing = asyncio.Lock()
        self._install(await asyncio.to_thread(self.store.snapshot))
        log.info("routing table at revision %s", self.current().revision)
        settings = self.settings
        if settings.tracing:
            self.tracer = RequestTracer(
                settings.trace_per_second, settings.trace_rate, settings.trace_address
            )
        self._shadow_queue = asyncio.Queue(settings.shadow_queue)
        self._tasks = [
            asyncio.create_task(self._watch(), name="router-watch"),
            asyncio.create_task(self._guard(), name="router-slo"),
        ] + [
            asyncio.create_task(self._shadow_worker(), name=f"router-shadow-{n}")
            for n in range(settings.shadow_workers)
        ]
        if self.tracer is not None:
            self._tasks.append(
                asyncio.create_task(self._send_traces(self.tracer),
                                    name="router-traces")
            )

    async def stop(self) -> None:
        """End the background tasks, copies in flight included, and close
        the idle backend connections; requests in flight are not waited for."""
        tasks = self._tasks
        # One cancel is not always enough: code that is not ours may swallow
        # it (asyncio.wait_for on Python 3.11 did, CPython gh-86296), and a
        # shadow worker would then go back to its queue for good. So each
        # task is cancelled again every 100 ms until it has ended.
        while not all(task.done() for task in tasks):
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=0.1)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.tracer is not None:
            self.tracer.flush()
        for upstream in self._upstreams.values():
            upstream.close()
        if self._revision is not None:
            self._revision.close()

    def _install(self, table: RoutingTable) -> None:
        settings = self.settings
        for name, url in table.backends.items():
            current = self._upstreams.get(name)
            if current is not None and current.url == url:
                continue
            if current is not None:
                current.close()
            self._upstreams[name] = Upstream(
                name, url, timeout=settings.upstream_timeout,
                idle_timeout=settings.idle_timeout, limit=settings.connections,
            )
        for state in table.contexts.values():
            if state.service not in self.breakers:
                self.breakers[state.service] = Breaker(
                    settings.breaker_failures, settings.breaker_cooldown
                )
            if state.name not in self.windows:
                self.windows[state.name] = Window()
        self._plan = _Plan(table)
        self.table = table

    async def _watch(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                await self.refresh()
            except Exception:
                # A store briefly unreadable must not stop routing: the last
                # table keeps serving until a read succeeds. Said once, not
                # five times a second.
                if not failing:
                    log.exception(
                        "cannot read the state store %s; routing by revision %s",
                        self.store.path, self.current().revision,
                    )
                failing = True
            else:
                if failing:
                    log.info("state store %s readable again", self.store.path)
                failing = False

    @staticmethod
    async def _send_traces(tracer: RequestTracer) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            tracer.flush()

    async def refresh(self) -> None:
        """Load the table again if the store's revision moved."""
        assert self._refreshing is not None
        async with self._refreshing:
            current = self.current()
            if self._revision is None:
                self._revision = self.store.revision_reader()
            # Polled on the loop: a thread hand-off five times a second
            # would cost more, and stall requests while it holds the GIL.
            revision = self._revision()
            if revision == current.revision:
                return

            table = await asyncio.to_thread(self.store.snapshot)
            log.info(
                "routing table at revision %s (was %s): %s",
                table.revision, current.revision, describe_change(current, table),
            )
            self._install(table)

    def current(self) -> RoutingTable:
        if self.table is None:
            raise RuntimeError("the router has not started")

        return self.table

    # The SLO guard -----------------------------------------------------

    async def _guard(self) -> None:
        while True:
            await asyncio.sleep(self.settings.slo_interval)
            try:
                await self.judge_all()
            except Exception:
                log.exception("the SLO guard failed; it runs again shortly")

    async def judge_all(self) -> None:
        """Judge every context's SLO now; roll back the ones in breach."""
        table = self.current()
        now = time.monotonic()
        for name, state in table.contexts.items():
            if state.slo is None:
                continue

            verdict = self.windows[name].judge(state.slo, now)
            self.verdicts[name] = verdict
            exposed = state.read_weight > 0 or any(
                table.weight_of(r) > 0 for r in table.routes if r.context == name
            )
            if verdict.kind != BREACH or not exposed:
                continue

            reason = f"SLO breach: {verdict.reason}"
            log.warning("rolling %s back to the monolith: %s", name, reason)
            await asyncio.to_thread(self.store.roll_back, name, ROUTER, reason)
            self.windows[name].clear()
            self.stats.bump(self.stats.rollbacks, name)
            await self.refresh()

    def verdict(self, context: str) -> Verdict | None:
        """The SLO's verdict on the context right now; None without an SLO."""
        state = self.current().contexts.get(context)
        if state is None or state.slo is None:
            return None

        return self.windows[context].judge(state.slo, time.monotonic())

    # Requests ----------------------------------------------------------

    async def handle(self, request: Request) -> Answer:
        plan = self._plan
        assert plan is not None
        path = request.path
        if path in _OWN_PATHS and request.method == "GET":
            return self._own(path)

        started = time.monotonic()
        tracer = self.tracer
        head, segment = request_head(request, tracer, started)

        seen = plan.found.get(request.method)
        found = seen.get(path) if seen is not None else None
        if found is None:
            found = plan.find(request.method, path)
        lane, side = found
        try:
            context = UNMATCHED if lane is None else lane.context
            if lane is not None and not lane.reads:
                answer = await self._write(request, head, lane)
            elif lane is not None and self._to_service(request, lane, side):
                answer = await self._from_service(request, head, lane, started)
            else:
                # The monolith's share, inlined: most requests come this way,
                # and a coroutine less is a microsecond less each.
                upstream = self._upstreams.get(MONOLITH)
                if upstream is None:
                    raise _no_backend(MONOLITH, self.store.path)
                body = request.body
                method = request.method
                try:
                    relayed = await upstream.exchange(
                        head + body if body else head,
                        bodiless=method == "HEAD", retry_stale=method in _READS,
                    )
                except UpstreamError as error:
                    self.stats.bump(self.stats.errors, MONOLITH)
                    raise _unreachable(error, self.settings.upstream_timeout) \
                        from None
                if (
                    relayed.status == 404 and lane is not None
                    and lane.writer != MONOLITH
                ):
                    # The monolith is a replica here and may lag its writer.
                    relayed.discard()
                    self.stats.bump(self.stats.replica_misses, lane.context)
                    answer = await self._send(request, head, lane.writer)
                else:
                    whole = self._relay_now(request, relayed, MONOLITH)
                    if whole is None:
                        whole = await self._relay(request, relayed, MONOLITH)
                    answer = whole
            if (
                lane is not None and lane.shadow_share
                and self._random.random() < lane.shadow_share
            ):
                self._mirror(request, head, lane, answer)
        except _Refused as refusal:
            self.stats.bump(self.stats.refused, refusal.body["error"])
            answer = own_answer(refusal.status, refusal.body)

        status = answer.status
        # Each lane keeps the histograms of its answers by backend, so timing
        # an answer costs no look-up by (context, backend).
        answered = plan.unmatched if lane is None else lane.answered
        latency = answered.get(answer.backend)
        if latency is None:
            latency = answered[answer.backend] = self.stats.latency_of(
                context, answer.backend
            )
        latency.observe(time.monotonic() - started, status >= 500)
        if segment is not None and tracer is not None:
            tracer.end(segment, request.method, path, status, context,
                       answer.backend)
        return answer

    def refused_by_wire(self, status: int, code: str, seconds: float) -> None:
        """Count an answer the wire layer made itself (`http1`): a request
        refused before it was routed, so under no route group."""
        stats = self.stats
        stats.bump(stats.refused, code)
        stats.latency_of(UNMATCHED, ROUTER).observe(seconds, status >= 500)

    def _to_service(
        self, request: Request, lane: _Lane, side: bool | None
    ) -> bool:
        """Whether a read goes to the context's service: by the side its
        path decided, else by weight and the key in its headers; or by a
        tester's override."""
        if side is None:
            key = self._key(request, lane)
            if key is None:
                side = lane.keyless_service
            else:
                # The hash of a key never changes: hot keys are hashed once.
                data = lane.prefix + key
                hashed = self._hashes.get(data)
                if hashed is None:
                    if len(self._hashes) > _HASHES_KEPT:
                        self._hashes.clear()
                    hashed = self._hashes[data] = murmur2(data)
                side = hashed < lane.limit

        lowered = request.lowered()
        if b"x-migrate-side" in lowered or (
            b"cookie" in lowered and b"migrate_side=" in lowered[b"cookie"]
        ):
            return self._override(request, lane, side)

        return side

    async def _from_service(
        self, request: Request, head: bytes, lane: _Lane, started: float
    ) -> Answer:
        """A read from the service, or from the monolith if it fails;
        `started` is when the request arrived, on the monotonic clock (the
        SLO needs answer times finer than uvloop's millisecond clock)."""
        service = lane.service
        breaker = self.breakers.get(service)
        # A closed circuit is asked nothing: this runs for every read.
        if (
            breaker is not None and breaker.opened_at is not None
            and not breaker.allows(started) and not lane.finished
        ):
            self.stats.bump(self.stats.breaker_skips, service)
            self.stats.bump(self.stats.fallbacks, lane.context)
            return await self._send(request, head, MONOLITH)

        upstream = self._upstreams.get(service)
        if upstream is None:
            failure = f"backend '{service}' has no URL"
        else:
            body = request.body
            try:
                answer = await upstream.exchange(
                    head + body if body else head,
                    bodiless=request.method == "HEAD", retry_stale=True,
                )
            except UpstreamError as error:
                failure = str(error)
                self.stats.bump(self.stats.errors, service)
            else:
                if answer.status == 404 and lane.writer != service:
                    # A replica that has not yet applied the writer's latest
                    # change answers 404 for what the client just created:
                    # the writer has the final word.
                    answer.discard()
                    window = self.windows.get(lane.context)
                    if window is not None:
                        window.record(started, time.monotonic() - started)
                    self.stats.bump(self.stats.replica_misses, lane.context)
                    return await self._send(request, head, MONOLITH)
                if answer.status < 500:
                    try:
                        relayed = self._relay_now(request, answer, service)
                        if relayed is None:
                            relayed = await self._relay(request, answer, service)
                    except _Refused as error:
                        failure = str(error)
                    else:
                        window = self.windows.get(lane.context)
                        if window is not None:
                            window.record(started, time.monotonic() - started)
                        if breaker is not None and breaker.failures:
                            breaker.succeeded()
                        return relayed
                else:
                    failure = f"answered {answer.status}"
                    answer.discard()
                    self.stats.bump(self.stats.errors, service)

        now = time.monotonic()
        window = self.windows.get(lane.context)
        if window is not None:
            window.record(now, None)
        if breaker is not None:
            breaker.failed(now)
        if lane.finished:
            raise _Refused(
                502, "backend_unavailable",
                f"{lane.context} is finished and only its service '{service}' "
                f"serves it; the read failed: {failure}",
                backend=service,
            )
        log.warning("read from %s failed, monolith answers: %s", service, failure)
        self.stats.bump(self.stats.fallbacks, lane.context)
        return await self._send(request, head, MONOLITH)

    @staticmethod
    def _key(request: Request, lane: _Lane) -> bytes | None:
        """A header or cookie key, as the bytes the client sent: nginx
        hashes those, so the router must too."""
        kind = lane.key_kind
        if kind == "header":
            return request.header(lane.key_name.lower().encode())

        if kind == "cookie":
            return _cookie(request.header(b"cookie"), lane.key_name)

        return None

    def _override(self, request: Request, lane: _Lane, to_service: bool) -> bool:
        if lane.finished:
            return to_service

        raw = request.header(b"x-migrate-side")
        value = raw.decode("latin-1") if raw is not None else cookie(
            request.header(b"cookie"), OVERRIDE_COOKIE
        )
        if value is None:
            return to_service

        side, _, secret = value.strip().partition(":")
        expected = self.current().override_secret
        granted = (
            expected is not None
            and side in ("service", MONOLITH)
            and hmac.compare_digest(_digest(secret), expected)
        )
        if not granted:
            self.stats.overrides_ignored += 1
            log.warning(
                "override to '%s' on %s %s from %s ignored: %s",
                side, request.method, request.path, request.client,
                "no override secret is set" if expected is None
                else "the secret does not match",
            )
            return to_service

        self.stats.bump(self.stats.overrides, f"{lane.context}:{side}")
        return side == "service"

    async def _write(self, request: Request, head: bytes, lane: _Lane) -> Answer:
        loop = asyncio.get_running_loop()
        settings = self.settings
        deadline = loop.time() + settings.hold_timeout
        retry_until = loop.time() + settings.retry_timeout
        keyed = request.header(b"idempotency-key") is not None
        pause = settings.hold_poll
        while True:
            writer = await self._writer_once_released(lane.context, deadline)
            pool = self._upstreams.get(writer)
            if pool is None:
                raise _no_backend(writer, self.store.path)

            body = request.body
            try:
                upstream = await pool.exchange(
                    head + body if body else head, retry_stale=keyed
                )
            except UpstreamError as error:
                self.stats.bump(self.stats.errors, writer)
                if not keyed or loop.time() >= retry_until:
                    raise _unreachable(error, settings.upstream_timeout) from None

                log.warning("write to %s failed, sent again (Idempotency-Key): %s",
                            writer, error)
            else:
                refused = (
                    upstream.status == 503
                    and _has(upstream.headers, b"x-migrate-not-writer")
                )
                # A not-the-writer refusal is waited out until the hold
                # timeout only; the Idempotency-Key retries are for failures.
                retry = (
                    keyed and not refused and upstream.status in _RETRIED_STATUSES
                )
                if refused and loop.time() < deadline:
                    # The writer refused before changing anything: safe to
                    # send again once the table names the new writer.
                    self.stats.bump(self.stats.not_writer_retries, lane.context)
                elif retry and loop.time() < retry_until:
                    log.warning("write to %s answered %s, sent again "
                                "(Idempotency-Key)", writer, upstream.status)
                else:
                    answer = self._relay_now(request, upstream, writer)
                    if answer is None:
                        answer = await self._relay(request, upstream, writer)
                    return answer

                upstream.discard()

            self.stats.bump(self.stats.write_retries, lane.context)
            await self.refresh()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def _writer_once_released(self, context: str, deadline: float) -> str:
        """The context's writer, once its writes are not held."""
        loop = asyncio.get_running_loop()
        counted = False
        while True:
            state = self.current().contexts.get(context)
            if state is None:
                return MONOLITH

            if not state.writes_held:
                return state.writer

            if not counted:
                self.stats.bump(self.stats.held_writes, context)
                counted = True
            if loop.time() >= deadline:
                raise _Refused(
                    503, "writes_held",
                    f"writes to {context} are held while its writer "
                    f"changes; still held after {self.settings.hold_timeout} s",
                    context=context,
                )

            await asyncio.sleep(self.settings.hold_poll)

    async def _send(self, request: Request, head: bytes, backend: str) -> Answer:
        """Send to one backend and relay its answer, whatever it is."""
        upstream = self._upstreams.get(backend)
        if upstream is None:
            raise _no_backend(backend, self.store.path)

        body = request.body
        method = request.method
        try:
            answer = await upstream.exchange(
                head + body if body else head,
                bodiless=method == "HEAD", retry_stale=method in _READS,
            )
        except UpstreamError as error:
            self.stats.bump(self.stats.errors, backend)
            raise _unreachable(error, self.settings.upstream_timeout) from None

        relayed = self._relay_now(request, answer, backend)
        if relayed is None:
            relayed = await self._relay(request, answer, backend)
        return relayed

    def _relay_now(
        self, request: Request, upstream: UpstreamAnswer, backend: str
    ) -> Answer | None:
        """The answer to relay if it is whole already; None if it needs waiting."""
        status = upstream.status
        if status >= 500:
            self.stats.bump(self.stats.errors, backend)
        if request.method == "HEAD" or status in (204, 304):
            upstream.discard()
            return Answer(status, response_headers(upstream.headers, backend), None,
                          reason=upstream.reason, length=upstream.length,
                          bodiless=True, backend=backend)

        body = upstream.body_now()
        if body is None:
            return None

        return Answer(status, response_headers(upstream.headers, backend), body,
                      reason=upstream.reason, backend=backend)

    async def _relay(
        self, request: Request, upstream: UpstreamAnswer, backend: str
    ) -> Answer:
        """An answer whose body is still arriving: read whole, or streamed."""
        headers = response_headers(upstream.headers, backend)
        if upstream.whole:
            try:
                body = await upstream.read()
            except UpstreamError as error:
                self.stats.bump(self.stats.errors, backend)
                raise _Refused(
                    502, "backend_unavailable",
                    f"backend '{backend}' broke off its answer: {error}",
                    backend=backend,
                ) from None

            return Answer(upstream.status, headers, body, reason=upstream.reason,
                          backend=backend)

        return Answer(upstream.status, headers, None, reason=upstream.reason,
                      stream=upstream.chunks(), length=upstream.length,
                      backend=backend)

    # Shadow traffic ----------------------------------------------------

    def _mirror(self, request: Request, head: bytes, lane: _Lane,
                answer: Answer) -> None:
        queue = self._shadow_queue
        if queue is None or answer.backend == ROUTER:
            return

        if not lane.reads and not lane.shadow_writes:
            return

        if answer.body is None or answer.stream is not None:
            self.stats.shadowed(lane.name, "skipped")
            return

        primary = answer.backend
        if lane.reads:
            candidate = MONOLITH if primary == lane.service else lane.service
        else:
            candidate = MONOLITH if primary != MONOLITH else lane.service
        observed = diff.Observed.of(answer.status, answer.headers, answer.body)
        marked = head[:-2] + SHADOW_HEADER.encode() + b": 1\r\n\r\n"
        job = _ShadowJob(lane, request, marked, primary, candidate, observed)
        try:
            queue.put_nowait(job)
        except asyncio.QueueFull:
            self.stats.shadowed(lane.name, "dropped")

    async def _shadow_worker(self) -> None:
        assert self._shadow_queue is not None
        while True:
            job = await self._shadow_queue.get()
            try:
                await self._compare(job)
            except Exception:
                log.exception("shadow comparison of %s failed", job.lane.name)

    async def _compare(self, job: _ShadowJob) -> None:
        lane = job.lane
        candidate = await self._shadow_call(job, job.candidate)
        if candidate is None:
            self.stats.shadowed(lane.name, diff.CANDIDATE_ERROR)
            return

        noise: set[str] | None = None
        if lane.noise and lane.reads:
            again = await self._shadow_call(job, job.primary)
            if again is not None:
                noise = diff.differences(job.observed, again)

        outcome, found = diff.outcome(job.observed, candidate, lane.rules, noise)
        self.stats.shadowed(lane.name, outcome)
        if outcome == diff.DIFFERENT:
            self.stats.shadow_samples.append({
                "route": lane.name,
                "request": f"{job.method} {job.target.decode('latin-1')}",
                "primary": job.primary,
                "candidate": job.candidate,
                "differences": list(found[:20]),
            })

    async def _shadow_call(self, job: _ShadowJob, backend: str) -> diff.Observed | None:
        upstream = self._upstreams.get(backend)
        if upstream is None:
            return None

        data = job.head + job.body if job.body else job.head
        try:
            answer = await upstream.exchange(
                data, bodiless=job.method == "HEAD", retry_stale=job.method in _READS
            )
            length = answer.length
            if length is not None and length > self.settings.shadow_max_body:
                answer.discard()
                return None

            body = await answer.read()
        except UpstreamError as error:
            log.debug("shadow copy to %s failed: %s", backend, error)
            return None

        headers = response_headers(answer.headers, backend)
        return diff.Observed.of(answer.status, headers, body)

    # The router's own endpoints ----------------------------------------

    def _own(self, path: str) -> Answer:
        table = self.current()
        if path == "/_router/health":
            return own_answer(200, {"status": "ok", "revision": table.revision})

        return own_answer(200, {"revision": table.revision, **self.stats.as_json()})

    def snapshot(self) -> dict[str, Any]:
        """Counters, breakers, SLO verdicts and shadow results, as JSON."""
        table = self.current()
        verdicts = {
            name: verdict.as_json()
            for name in table.contexts
            if (verdict := self.verdict(name)) is not None
        }
        return {
            "revision": table.revision,
            **self.stats.as_json(),
            "breakers": {name: b.state for name, b in self.breakers.items()},
            "slo": verdicts,
            "shadow_samples": list(self.stats.shadow_samples),
            "shadow_queue": (
                self._shadow_queue.qsize() if self._shadow_queue else 0
            ),
            "traces_sampled": self.tracer.sampled if self.tracer else None,
            "traces_dropped": self.tracer.dropped if self.tracer else None,
        }


def _unreachable(error: UpstreamError, timeout: float) -> _Refused:
    if error.timed_out:
        # The problem says which wait ran out: for a free connection, for
        # a connection, or for the answer.
        return _Refused(
            504, "backend_timeout",
            f"backend '{error.backend}' timed out after {timeout} s: "
            f"{error.problem}",
            backend=error.backend,
        )

    return _Refused(
        502, "backend_unavailable",
        f"backend '{error.backend}' could not be reached: {error}",
        backend=error.backend,
    )


def _no_backend(backend: str, path: str) -> _Refused:
    return _Refused(
        502, "no_backend",
        f"backend '{backend}' has no URL in the state store {path}",
        backend=backend,
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _has(headers: Headers, name: bytes) -> bool:
    return any(n.lower() == name for n, _ in headers)


def cookie(header: bytes | None, name: str) -> str | None:
    """One cookie's value from a Cookie header, or None."""
    value = _cookie(header, name)
    return None if value is None else value.decode("latin-1")


def _cookie(header: bytes | None, name: str) -> bytes | None:
    if not header:
        return None

    wanted = name.encode() + b"="
    for part in header.split(b";"):
        part = part.strip()
        if part.startswith(wanted):
            return part[len(wanted):].strip(b'"')
    return None


def own_answer(status: int, body: Mapping[str, Any]) -> Answer:
    return Answer(
        status,
        [_JSON, (b"X-Migrate-Backend", b"router")],
        json.dumps(body).encode(),
        backend=ROUTER,
    )


def _dropped(always: frozenset[bytes], headers: Headers) -> frozenset[bytes]:
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
        if token.strip()
    }
    return always | named if named else always


def request_head(
    request: Request, tracer: RequestTracer | None = None, now: float = 0.0
) -> tuple[bytes, RequestSegment | None]:
    """The request line and headers the backend gets, ending in a blank line,
    and the request's segment if a tracer sampled it.

    With a tracer, the head carries the tracer's X-Amzn-Trace-Id for the
    request in place of the client's (continuing the client's trace where
    it sent one); `now` is when the request arrived, on the monotonic clock.
    As it goes it records the request's headers by lower-case name, so the
    router's later look-ups cost nothing more.
    """
    incoming = request.headers
    lowered: dict[bytes, bytes] = {}
    dropped = _NOT_FORWARDED
    lines = [request.method.encode(), b" ", request.target, b" HTTP/1.1\r\n"]
    forwarded_for: list[bytes] = []
    host = trace = None
    for name, value in incoming:
        low = name.lower()
        lowered[low] = value
        if low in dropped or low.startswith(b"proxy-"):
            if low == b"x-forwarded-for":
                forwarded_for.append(value)
            elif low == b"connection":
                dropped = _dropped(_NOT_FORWARDED, incoming)
            continue
        if low == b"host":
            host = value
        elif tracer is not None and low == b"x-amzn-trace-id":
            trace = value
            continue
        lines += (name, b": ", value, b"\r\n")
    request.remember(lowered)
    if dropped is not _NOT_FORWARDED:
        # Headers named in Connection may have come before it: filter again.
        lines = [lines[0], lines[1], lines[2], lines[3]] + [
            part
            for name, value in incoming
            if (low := name.lower()) not in dropped
            and not low.startswith(b"proxy-")
            and not (tracer is not None and low == b"x-amzn-trace-id")
            for part in (name, b": ", value, b"\r\n")
        ]

    forwarded_for.append(request.client.encode())
    lines += (b"X-Forwarded-For: ", b", ".join(forwarded_for), b"\r\n",
              b"X-Forwarded-Proto: ", request.scheme.encode(), b"\r\n")
    if host:
        lines += (b"X-Forwarded-Host: ", host, b"\r\n")
    elif host is None:
        # Only an HTTP/1.0 client may send no Host (the wire layer refuses
        # the rest), but the head goes on as HTTP/1.1, which must have one:
        # empty, as RFC 9112 has it for a target without an authority.
        lines.append(b"Host: \r\n")
    body = request.body
    if body is not None or request.method in _WITH_BODY:
        lines.append(b"Content-Length: %d\r\n" % (len(body) if body else 0))
    if tracer is None:
        lines.append(b"\r\n")
        return b"".join(lines), None

    # The tracer's line ends the head, blank line included.
    line, segment = tracer.begin(trace, now)
    lines.append(line)
    return b"".join(lines), segment


def response_headers(incoming: Headers, backend: str) -> Headers:
    """A backend's headers as the client gets them, naming who answered."""
    dropped = _HOP_BY_HOP
    for name, _ in incoming:
        if len(name) == 10 and name.lower() == b"connection":
            dropped = _dropped(_HOP_BY_HOP, incoming)
            break

    headers = [
        (name, value)
        for name, value in incoming
        if (lowered := name.lower()) not in dropped
        and not lowered.startswith(b"proxy-")
        and lowered != b"x-migrate-backend"
    ]
    headers.append((b"X-Migrate-Backend", backend.encode()))
    return headers


def describe_change(before: RoutingTable, after: RoutingTable) -> str:
    """One line an operator can read: what moved between two tables."""
    changes: list[str] = []
    for name, state in sorted(after.contexts.items()):
        old = before.contexts.get(name)
        if old is None:
            changes.append(
                f"{name} registered (service {state.service}, "
                f"reads {state.read_weight} %, writer {state.writer})"
            )
            continue
        if old.read_weight != state.read_weight:
            changes.append(
                f"{name} reads {old.read_weight} % -> {state.read_weight} %"
            )
        if old.writer != state.writer:
            changes.append(f"{name} writer {old.writer} -> {state.writer}")
        if old.writes_held != state.writes_held:
            changes.append(
                f"{name} writes {'held' if state.writes_held else 'released'}"
            )
        if old.service != state.service:
            changes.append(f"{name} service {old.service} -> {state.service}")
        if old.salt != state.salt:
            changes.append(f"{name} buckets reshuffled (new salt)")
        if old.shadow != state.shadow:
            changes.append(f"{name} shadow {state.shadow.text()}")
        if old.slo != state.slo:
            changes.append(
                f"{name} SLO {state.slo.text() if state.slo else 'removed'}"
            )
        if old.keyless_side != state.keyless_side:
            changes.append(f"{name} keyless reads to {state.keyless_side}")
        if old.phase != state.phase:
            changes.append(f"{name} phase {old.phase} -> {state.phase}")
    if before.route_weights != after.route_weights:
        moved = sorted(
            f"{method} {rule} {after.route_weights.get((method, rule), 'context')}"
            for method, rule in before.route_weights.keys() | after.route_weights.keys()
            if before.route_weights.get((method, rule))
            != after.route_weights.get((method, rule))
        )
        changes.append("route weights " + ", ".join(moved))
    if before.routes != after.routes:
        changes.append(f"{len(after.routes)} routes")
    if before.backends != after.backends:
        urls = sorted(after.backends.items())
        changes.append("backends " + ", ".join(f"{n}={u}" for n, u in urls))
    if before.override_secret != after.override_secret:
        changes.append("override secret changed")
    return "; ".join(changes) or "no routing change"


# Serving ------------------------------------------------------------------


async def serve(
    store: StateStore | str | os.PathLike[str],
    host: str,
    port: int,
    settings: Settings | None = None,
    started: asyncio.Future[tuple[str, int]] | None = None,
    admin: tuple[str, int, str] | None = None,
    admin_started: asyncio.Future[tuple[str, int]] | None = None,
) -> None:
    """Run the router until cancelled; `started` gets the bound address.

    `admin` is (host, port, token) for the admin API; None runs without it.
    """
    from migrate.router.admin import AdminApi

    if not isinstance(store, StateStore):
        store = StateStore(store)
    settings = settings or Settings()
    router = Router(store, settings)
    await router.start()
    servers: list[asyncio.Server] = []
    api: AdminApi | None = None
    try:
        server = await serve_http(router.handle, host, port,
                                  max_body=settings.max_body,
                                  max_head=settings.max_head,
                                  timeouts=settings.client_timeouts,
                                  refused=router.refused_by_wire)
        servers.append(server)
        address = server.sockets[0].getsockname()
        log.info("router listening on http://%s:%s", address[0], address[1])
        if admin is not None:
            api = AdminApi(router, admin[2])
            api.start()
            admin_server = await serve_http(api.handle, admin[0], admin[1],
                                            max_body=MiB)
            servers.append(admin_server)
            admin_address = admin_server.sockets[0].getsockname()
            api.listening_on(admin_address[0], admin_address[1])
            log.info("admin API on http://%s:%s", admin_address[0],
                     admin_address[1])
            if admin_started is not None:
                admin_started.set_result((admin_address[0], admin_address[1]))
        settle_memory()
        if started is not None:
            started.set_result((address[0], address[1]))
        await asyncio.Event().wait()
    finally:
        for server in servers:
            server.close()
        if api is not None:
            await api.stop()
        await router.stop()


class RunningRouter:
    """A router served on the current event loop; `stop()` to end it."""

    def __init__(self, router: Router, server: asyncio.Server):
        self.router = router
        self.server = server
        self.port: int = server.sockets[0].getsockname()[1]

    @classmethod
    async def start(
        cls, store: StateStore, settings: Settings | None = None,
        host: str = "127.0.0.1", port: int = 0,
    ) -> RunningRouter:
        settings = settings or Settings()
        router = Router(store, settings)
        await router.start()
        server = await serve_http(router.handle, host, port,
                                  max_body=settings.max_body,
                                  max_head=settings.max_head,
                                  timeouts=settings.client_timeouts,
                                  refused=router.refused_by_wire)
        return cls(router, server)

    async def stop(self) -> None:
        self.server.close()
        await self.router.stop()


# Embedding in aiohttp -------------------------------------------------------

_ROUTER_KEY: Any = None


def create_app(
    store: StateStore | str | os.PathLike[str], settings: Settings | None = None
) -> Any:
    """The router as an aiohttp application, for hosts that run aiohttp.

    Routing, fallback, held writes, shadow and SLO behave as with `serve`;
    aiohttp parses the requests, so its limits apply, and it is slower.
    """
    from aiohttp import web

    global _ROUTER_KEY
    if _ROUTER_KEY is None:
        _ROUTER_KEY = web.AppKey("router", Router)
    if not isinstance(store, StateStore):
        store = StateStore(store)
    settings = settings or Settings()
    router = Router(store, settings)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await router.start()
        yield
        await router.stop()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read() if request.body_exists else None
        incoming = Request(
            request.method,
            request.raw_path.encode("latin-1"),
            list(request.raw_headers),
            body,
            request.remote or "unknown",
            scheme=request.scheme,
        )
        answer = await router.handle(incoming)
        return await _aiohttp_answer(request, answer)

    app = web.Application(client_max_size=settings.max_body)
    app[_ROUTER_KEY] = router
    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _aiohttp_answer(request: Any, answer: Answer) -> Any:
    from aiohttp import web
    from multidict import CIMultiDict

    headers: CIMultiDict[str] = CIMultiDict(
        (n.decode("latin-1"), v.decode("latin-1")) for n, v in answer.headers
    )
    reason = answer.reason.decode("latin-1") or None
    if answer.bodiless:
        if answer.length is not None:
            headers["Content-Length"] = str(answer.length)
        return web.Response(status=answer.status, reason=reason, headers=headers)

    if answer.stream is None:
        return web.Response(status=answer.status, reason=reason, headers=headers,
                            body=answer.body)

    response = web.StreamResponse(status=answer.status, reason=reason,
                                  headers=headers)
    if answer.length is not None:
        response.content_length = answer.length
    else:
        response.enable_chunked_encoding()
    await response.prepare(request)
    async for chunk in answer.stream:
        await response.write(chunk)
    await response.write_eof()
    return response


def router_of(app: Any) -> Router:
    """The `Router` behind an application made by `create_app`."""
    router: Router = app[_ROUTER_KEY]
    return router

