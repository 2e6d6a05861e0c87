"""The migration dashboard for Grafana, built with Grafana's foundation SDK.

`dashboard()` returns the dashboard as the JSON Grafana imports (Dashboards
> New > Import, or the HTTP API's `POST /api/dashboards/db` with it as
`dashboard`). It reads the kit's metrics from a Prometheus data source
chosen by the `datasource` variable, and shows:

- a row per route group (the `context` variable, repeated): request rate,
  error rate, and p50/p99 latency, the monolith and the service side by
  side on each panel (one series per backend); the context's read weight;
- shadow comparisons per route and outcome; fallbacks and replica misses;
- queues: messages visible, in flight, and dead letters per queue;
- outbox backlog per database and context; sync lag per direction, in
  events and in seconds;
- Lambda functions: invocations, errors and duration.

Why the foundation SDK: it is Grafana's own, generated from the same
schemas Grafana validates dashboards with, so a panel or option Grafana
does not know cannot be written; grafanalib is hand-written and lags
Grafana's schema.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

UID = "migrate-migration"
TITLE = "Migration: monolith and services side by side"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
ONE_CONTEXT = 'context=~"$context"'


def _query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .datasource(DATASOURCE)
    )


def _series(
    title: str,
    unit: str,
    queries: list[prometheus.Dataquery],
    description: str,
    width: int = 8,
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .targets(queries)  # type: ignore[arg-type]
        .height(8)
        .span(width)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
    )


def _route_group() -> builders.Row:
    by_backend = "sum by (backend)"
    requests = f"migrate_router_requests_total{{{ONE_CONTEXT}}}"
    errors = f"migrate_router_request_errors_total{{{ONE_CONTEXT}}}"
    buckets = f"migrate_router_request_duration_seconds_bucket{{{ONE_CONTEXT}}}"
    latency = [
        _query(
            f"histogram_quantile({q}, sum by (backend, le) "
            f"(rate({buckets}[{RATE}])))",
            f"p{int(q * 100)} {{{{backend}}}}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.99, "B"))
    ]
    return (
        builders.Row("Route group $context")
        .repeat("context")
        .with_panel(_series(
            "Requests per second, per backend", "reqps",
            [_query(f"{by_backend} (rate({requests}[{RATE}]))", "{{backend}}")],
            "Answers of this route group by the backend that gave them; "
            "`router` counts the answers the router made itself.",
        ))
        .with_panel(_series(
            "Error rate, per backend", "percentunit",
            [_query(
                f"{by_backend} (rate({errors}[{RATE}]))\n/\n"
                f"{by_backend} (rate({requests}[{RATE}]))",
                "{{backend}}",
            )],
            "Share of answers that were server errors (5xx).",
        ))
        .with_panel(_series(
            "Latency p50 and p99, per backend", "s", latency,
            "From the router's histogram: the upper edge of the bucket each "
            "percentile falls in.",
            width=6,
        ))
        .with_panel(
            stat.Panel()
            .title("Reads on the service")
            .description("The context's read weight, in percent.")
            .datasource(DATASOURCE)
            .unit("percent")
            .color_mode(common.BigValueColorMode.VALUE)
            .graph_mode(common.BigValueGraphMode.AREA)
            .targets([_query(  # type: ignore[list-item]
                f"max(migrate_router_read_weight{{{ONE_CONTEXT}}})", "weight"
            )])
            .height(8)
            .span(2)
        )
    )


def _shadow_and_fallbacks() -> builders.Row:
    return (
        builders.Row("Shadow traffic, fallbacks and replica misses")
        .with_panel(_series(
            "Shadow comparisons per route and outcome", "ops",
            [_query(
                "sum by (route, outcome) "
                f"(rate(migrate_router_shadow_comparisons_total[{RATE}]))",
                "{{route}} {{outcome}}",
            )],
            "`different` is a response that did not match the primary's.",
            width=12,
        ))
        .with_panel(_series(
            "Fallbacks and replica misses", "ops",
            [
                _query(f"sum by (context) "
                       f"(rate(migrate_router_fallbacks_total[{RATE}]))",
                       "fallback {{context}}", "A"),
                _query(f"sum by (context) "
                       f"(rate(migrate_router_replica_misses_total[{RATE}]))",
                       "replica miss {{context}}", "B"),
            ],
            "Reads meant for a service that the monolith answered; reads a "
            "replica did not find and the writer answered.",
            width=12,
        ))
    )


def _queues() -> builders.Row:
    return (
        builders.Row("Queues and dead letters")
        .with_panel(_series(
            "Messages waiting and in flight", "short",
            [
                _query("sum by (queue) (migrate_queue_visible_messages)",
                       "waiting {{queue}}", "A"),
                _query("sum by (queue) (migrate_queue_in_flight_messages)",
                       "in flight {{queue}}", "B"),
            ],
            "SQS's approximate counts, read by the system exporter.",
            width=12,
        ))
        .with_panel(_series(
            "Dead letters", "short",
            [_query("sum by (queue) (migrate_queue_dead_letter_messages)",
                    "{{queue}}")],
            "Messages in each queue's dead-letter queue: see `migrate dlq`.",
            width=12,
        ))
    )


def _data() -> builders.Row:
    return (
        builders.Row("Outboxes and sync lag")
        .with_panel(_series(
            "Outbox backlog", "short",
            [_query("sum by (database, context) (migrate_outbox_backlog_events)",
                    "{{database}}: {{context}}")],
            "Events written and not yet published, per database and context.",
        ))
        .with_panel(_series(
            "Sync lag, events", "short",
            [_query("sum by (context, direction) (migrate_sync_lag_events)",
                    "{{context}} {{direction}}")],
            "Events one side has yet to apply of the other's.",
        ))
        .with_panel(_series(
            "Sync lag, seconds", "s",
            [_query("max by (context, direction) (migrate_sync_lag_seconds)",
                    "{{context}} {{direction}}")],
            "Age of the oldest event not yet applied; 0 when none waits.",
        ))
    )


def _functions() -> builders.Row:
    by_function = "sum by (function)"
    return (
        builders.Row("Lambda functions")
        .with_panel(_series(
            "Invocations and errors", "ops",
            [
                _query(f"{by_function} "
                       f"(rate(migrate_lambda_invocations_total[{RATE}]))",
                       "{{function}}", "A"),
                _query(f"{by_function} (rate(migrate_lambda_errors_total[{RATE}]))",
                       "errors {{function}}", "B"),
                _query(f"{by_function} "
                       f"(rate(migrate_lambda_items_failed_total[{RATE}]))",
                       "items failed {{function}}", "C"),
            ],
            "Errors fail a whole batch; items failed are reported by the "
            "function (batchItemFailures).",
            width=12,
        ))
        .with_panel(_series(
            "Duration p99", "s",
            [_query(
                "histogram_quantile(0.99, sum by (function, le) "
                f"(rate(migrate_lambda_duration_seconds_bucket[{RATE}])))",
                "{{function}}",
            )],
            "Seconds per invocation.",
            width=12,
        ))
    )


def build() -> Any:
    """The dashboard as the foundation SDK's model."""
    contexts = (
        builders.QueryVariable("context")
        .label("Route group")
        .datasource(DATASOURCE)
        .query("label_values(migrate_router_requests_total, context)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
    )
    model = (
        builders.Dashboard(TITLE)
        .uid(UID)
        .description(
            "Did anything get worse after a shift, and where: each route group "
            "on the monolith and on its service, and the messaging and data "
            "paths between them. Generated by `migrate metrics grafana`."
        )
        .tags(["migrate", "strangler-fig"])
        .time("now-1h", "now")
        .refresh("10s")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(
            builders.DatasourceVariable("datasource")
            .label("Prometheus")
            .type("prometheus")
        )
        .with_variable(contexts)
        .with_row(_route_group())
        .with_row(_shadow_and_fallbacks())
        .with_row(_queues())
        .with_row(_data())
        .with_row(_functions())
        .build()
    )
    # Ids are unique within a dashboard; the builders leave them all 0.
    number = 0
    for row in model.panels or []:
        for panel in [row, *getattr(row, "panels", [])]:
            number += 1
            panel.id_val = number
    return model


def dashboard() -> dict[str, Any]:
    """The dashboard as the JSON Grafana imports."""
    found: dict[str, Any] = json.loads(json.dumps(build(), cls=JSONEncoder))
    # The builders write what the 10.1 schema had and Grafana 11 dropped:
    # the dashboard's `style` (the theme is the viewer's choice now) and a
    # placeholder id per variable; and an interval variable's `auto`
    # settings on every variable. Grafana ignores them; without them the
    # JSON fits today's schema.
    found.pop("style", None)
    for variable in found["templating"]["list"]:
        for key in ("id", "auto", "auto_min", "auto_count"):
            variable.pop(key, None)
    return found


def expressions(model: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard's panels."""
    panels: list[dict[str, Any]] = []
    for panel in model.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return [
        target["expr"]
        for panel in panels
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def variable_queries(model: dict[str, Any]) -> list[str]:
    """The queries of the dashboard's query variables (`label_values(...)`)."""
    return [
        variable["query"]
        for variable in model.get("templating", {}).get("list", [])
        if variable.get("type") == "query"
    ]
