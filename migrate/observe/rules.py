"""Prometheus rules for the SLOs the router enforces, from its state store.

For each context with an SLO (`migrate slo`), over the SLO's window:

- recording rules, per backend (the service, the monolith, and `router`
  for the answers the router made itself), so the two sides can be put
  side by side:
  `context_backend:migrate_router_requests:increase_window`,
  `context_backend:migrate_router_error_ratio:rate_window` and
  `context_backend:migrate_router_latency_p99_seconds:rate_window`, each
  labelled with `slo_window`;
- two alerts on the context's service, the side the SLO judges:
  `MigrateSloErrorRateBreach` and `MigrateSloLatencyBreach`. Like the
  router's guard they judge only a window with at least `min_requests`
  requests; unlike it they roll nothing back: the router already has.

The p99 comes from the router's histogram buckets (`LATENCY_BOUNDS`),
coarser than the guard's own; both report the bucket's upper edge, so the
alert can fire a little later than the rollback, never earlier than the
figures warrant. A window shorter than two scrape intervals (10 s) is
widened to 10 s, since a rate needs two samples.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from migrate.router.state import RoutingTable

MIN_WINDOW_SECONDS = 10
REQUESTS = "context_backend:migrate_router_requests:increase_window"
ERROR_RATIO = "context_backend:migrate_router_error_ratio:rate_window"
P99 = "context_backend:migrate_router_latency_p99_seconds:rate_window"


def window(seconds: float) -> str:
    """A Prometheus duration for an SLO window, in whole seconds."""
    return f"{max(MIN_WINDOW_SECONDS, math.ceil(seconds))}s"


def slo_rules(table: RoutingTable) -> dict[str, Any]:
    """The rule groups for every context with an SLO, as promtool reads them."""
    recording: list[dict[str, Any]] = []
    alerting: list[dict[str, Any]] = []
    for name, state in sorted(table.contexts.items()):
        slo = state.slo
        if slo is None:
            continue

        span = window(slo.window_seconds)
        only = f'{{context="{name}"}}'
        labels = {"slo_window": span}
        recording += [
            {
                "record": REQUESTS,
                "expr": "sum by (context, backend) "
                        f"(increase(migrate_router_requests_total{only}[{span}]))",
                "labels": labels,
            },
            {
                "record": ERROR_RATIO,
                "expr": "sum by (context, backend) "
                        f"(rate(migrate_router_request_errors_total{only}[{span}]))"
                        "\n/\nsum by (context, backend) "
                        f"(rate(migrate_router_requests_total{only}[{span}]))",
                "labels": labels,
            },
            {
                "record": P99,
                "expr": "histogram_quantile(0.99, sum by (context, backend, le) "
                        "(rate(migrate_router_request_duration_seconds_bucket"
                        f"{only}[{span}])))",
                "labels": labels,
            },
        ]
        side = f'{{context="{name}", backend="{state.service}"}}'
        enough = (
            f"\nand on (context, backend)\n{REQUESTS}{side} >= {slo.min_requests}"
        )
        alerting += [
            {
                "alert": "MigrateSloErrorRateBreach",
                "expr": f"{ERROR_RATIO}{side} > {slo.max_error_rate!r}{enough}",
                "labels": {"severity": "page", "context": name},
                "annotations": {
                    "summary": f"{name}'s service fails more than its SLO allows",
                    "description": (
                        f"Error rate {{{{ $value | humanizePercentage }}}} of "
                        f"{state.service} over {span}; the SLO is "
                        f"{slo.text()}. The router rolls {name}'s reads back "
                        "to the monolith on a breach."
                    ),
                },
            },
            {
                "alert": "MigrateSloLatencyBreach",
                "expr": f"{P99}{side} > {slo.max_p99_ms / 1000!r}{enough}",
                "labels": {"severity": "page", "context": name},
                "annotations": {
                    "summary": f"{name}'s service answers slower than its SLO",
                    "description": (
                        f"p99 {{{{ $value | humanizeDuration }}}} of "
                        f"{state.service} over {span}; the SLO is {slo.text()}."
                    ),
                },
            },
        ]
    groups: list[dict[str, Any]] = []
    if recording:
        groups.append({"name": "migrate-slo-recording", "rules": recording})
        groups.append({"name": "migrate-slo-alerts", "rules": alerting})
    return {"groups": groups}


def render(found: dict[str, Any]) -> str:
    header = (
        "# Rules for the SLOs in the router's state store, written by the kit\n"
        "# (`migrate metrics rules`); regenerate after `migrate slo`.\n"
    )
    return header + yaml.safe_dump(found, sort_keys=False, width=88)


def expressions(found: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the rules."""
    return [rule["expr"] for group in found["groups"] for rule in group["rules"]]
