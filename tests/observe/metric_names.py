"""The metric names a PromQL expression reads, by a real PromQL parser."""

from __future__ import annotations

import re

import promql_parser

# Grafana's own variables, as Grafana substitutes them before Prometheus
# sees a query; dashboard variables ($context) sit in strings already.
_GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "1m",
                   "$__range": "1h"}
_LABEL_VALUES = re.compile(r"^label_values\((?P<metric>[^,]+),\s*\w+\)$")


def metric_names(expr: str) -> set[str]:
    """Every metric name a selector of `expr` names."""
    for macro, value in _GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    found: set[str] = set()

    def visit(node: object, *_: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def variable_metric_names(query: str) -> set[str]:
    """The metric a Grafana `label_values(metric, label)` query reads."""
    matched = _LABEL_VALUES.match(query.strip())
    assert matched, f"not a label_values query: {query!r}"
    return metric_names(matched["metric"])
