"""The router's counters as Prometheus metrics, read only when scraped.

The request path keeps its plain counters (`proxy.Stats`) and pays nothing
more: this collector turns them into metric families when Prometheus asks,
on the admin listener's `GET /metrics`. The latency histograms are the
router's own (`proxy.Latency`, cumulative buckets at `LATENCY_BOUNDS`), so
`histogram_quantile` over them gives the same p50 and p99 as
`migrate status`.

A request is counted under the backend that answered it; one the router
answered itself (refused, unreachable backend, no route) under `router`,
and a refusal by its code too, the wire layer's included (`http1`: 400,
408, 413, 431, 501, 505), which count under the context `(unmatched)`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from migrate.observe import metrics
from migrate.router.http1 import Answer
from migrate.router.proxy import LATENCY_BOUNDS, Router

_BOUNDS = [repr(bound) for bound in LATENCY_BOUNDS]
_STATES = ("closed", "open", "half-open")
_VERDICTS = ("ok", "breach", "inconclusive")
_TEXT = (b"Content-Type", metrics.CONTENT_TYPE.encode())


class RouterCollector:
    """Families from one router's `Stats`, its breakers, table and SLO guard."""

    def __init__(self, router: Router):
        self.router = router

    def collect(self) -> Iterator[Metric]:
        router = self.router
        stats = router.stats
        family = metrics.family

        requests = family("migrate_router_requests_total")
        errors = family("migrate_router_request_errors_total")
        duration = family("migrate_router_request_duration_seconds")
        for (context, backend), seen in list(stats.latency.items()):
            labels = [context, backend]
            requests.add_metric(labels, seen.count)
            errors.add_metric(labels, seen.errors)
            cumulative = itertools.accumulate(seen.buckets)
            buckets = list(zip([*_BOUNDS, "+Inf"], cumulative, strict=True))
            duration.add_metric(labels, buckets, seen.sum)
        yield from (requests, errors, duration)

        for name, counts in (
            ("migrate_router_backend_failures_total", stats.errors),
            ("migrate_router_fallbacks_total", stats.fallbacks),
            ("migrate_router_replica_misses_total", stats.replica_misses),
            ("migrate_router_refused_total", stats.refused),
            ("migrate_router_held_writes_total", stats.held_writes),
            ("migrate_router_rollbacks_total", stats.rollbacks),
        ):
            counter = family(name)
            for key, count in list(counts.items()):
                counter.add_metric([key], count)
            yield counter

        shadow = family("migrate_router_shadow_comparisons_total")
        for route, outcomes in list(stats.shadow.items()):
            for outcome, count in outcomes.items():
                shadow.add_metric([route, outcome], count)
        yield shadow

        breakers = family("migrate_router_breaker_state")
        for backend, breaker in list(router.breakers.items()):
            state = breaker.state
            for candidate in _STATES:
                breakers.add_metric([backend, candidate], int(candidate == state))
        yield breakers

        yield from self._table()

    def _table(self) -> Iterator[Metric]:
        router = self.router
        table = router.table
        family = metrics.family
        weights = family("migrate_router_read_weight")
        route_weights = family("migrate_router_route_weight")
        writers = family("migrate_router_writer")
        verdicts = family("migrate_router_slo_verdict")
        revision = family("migrate_router_table_revision")
        queue = family("migrate_router_shadow_queue_depth")
        if table is not None:
            snapshot = router.snapshot()
            revision.add_metric([], table.revision)
            queue.add_metric([], snapshot["shadow_queue"])
            for name, state in sorted(table.contexts.items()):
                weights.add_metric([name], state.read_weight)
                for backend in sorted({state.service, "monolith"}):
                    writers.add_metric([name, backend], int(state.writer == backend))
                verdict = snapshot["slo"].get(name)
                for kind in _VERDICTS if verdict else ():
                    verdicts.add_metric([name, kind], int(verdict["verdict"] == kind))
            for route in table.routes:
                weight = table.route_weights.get((route.method, route.rule))
                if weight is not None:
                    route_weights.add_metric([route.context, route.name], weight)
        yield from (weights, route_weights, writers, verdicts, revision, queue)


class RouterMetrics:
    """The router's metrics registry, for its admin listener and EMF lines."""

    def __init__(self, router: Router):
        self.registry: CollectorRegistry = metrics.registry_of(
            RouterCollector(router)  # type: ignore[arg-type]
        )
        metrics.emit_also(self.registry)

    def answer(self) -> Answer:
        """`GET /metrics`: the router's metrics and its process's."""
        return Answer(200, [_TEXT], metrics.exposition(self.registry),
                      backend="router")
