"""Prometheus rules for the router's SLOs, checked and unit-tested by
promtool (Debian's prometheus package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from metric_names import metric_names
from workspaces import unavailable

from migrate.observe import rules
from migrate.observe.metrics import CATALOGUE
from migrate.router.slo import Slo
from migrate.router.state import StateStore

REPOSITORY = Path(__file__).resolve().parents[2]
BILLING = {"context": "billing", "backend": "billing"}


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    state = StateStore(tmp_path / "router.db")
    state.set_backend("monolith", "http://127.0.0.1:8701")
    state.set_backend("billing", "http://127.0.0.1:8711")
    state.set_backend("shipping", "http://127.0.0.1:8714")
    state.register_routes("billing", "billing", [
        ("GET", "/invoices/<int:invoice_id>", "invoice_id"),
    ])
    state.register_routes("shipping", "shipping", [
        ("GET", "/shipments/<int:shipment_id>", "shipment_id"),
    ])
    state.set_slo("billing", Slo(max_error_rate=0.01, max_p99_ms=500,
                                 window_seconds=30, min_requests=20),
                  "test", "guard billing")
    return state


def _promtool(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool is not installed (Debian's prometheus package)")
    return subprocess.run([str(promtool), *arguments], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    inside = ", ".join(f'{k}="{v}"' for k, v in {**BILLING, **labels}.items())
    return {"series": f"{name}{{{inside}}}", "values": values}


def _traffic(requests: int, errors: int, slow: bool) -> list[dict[str, str]]:
    """Five-second samples of the router's counters for billing's service."""
    fast, late = ("0x20", f"0+{requests}x20") if slow else (
        f"0+{requests}x20", f"0+{requests}x20"
    )
    bucket = "migrate_router_request_duration_seconds_bucket"
    return [
        _series("migrate_router_requests_total", f"0+{requests}x20"),
        _series("migrate_router_request_errors_total", f"0+{errors}x20"),
        _series(bucket, fast, le="0.25"),
        _series(bucket, late, le="1.0"),
        _series(bucket, late, le="+Inf"),
    ]


def _alert(name: str, description: str) -> dict[str, Any]:
    return {
        "exp_labels": {**BILLING, "severity": "page", "slo_window": "30s"},
        "exp_annotations": {
            "summary": {
                "MigrateSloErrorRateBreach":
                    "billing's service fails more than its SLO allows",
                "MigrateSloLatencyBreach":
                    "billing's service answers slower than its SLO",
            }[name],
            "description": description,
        },
    }


SLO_TEXT = ("errors <= 1.00%, p99 <= 500 ms over 30 s (at least 20 requests)")


def _run_tests(folder: Path, found: dict[str, Any],
               cases: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    (folder / "rules.yml").write_text(rules.render(found))
    (folder / "tests.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"],
        "evaluation_interval": "5s",
        "tests": cases,
    }, sort_keys=False))
    return _promtool("test", "rules", "tests.yml", cwd=folder)


def test_promtool_accepts_the_rules(store: StateStore, tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(rules.render(rules.slo_rules(store.snapshot())))

    checked = _promtool("check", "rules", "rules.yml", cwd=tmp_path)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout


def test_only_contexts_with_an_slo_get_rules(store: StateStore) -> None:
    found = rules.slo_rules(store.snapshot())

    contexts = {
        rule["labels"]["context"]
        for group in found["groups"] for rule in group["rules"]
        if "alert" in rule
    }
    assert contexts == {"billing"}
    assert all('context="billing"' in e for e in rules.expressions(found))


def test_the_rules_read_only_metrics_in_the_kit_s_catalogue(
    store: StateStore,
) -> None:
    found = rules.slo_rules(store.snapshot())
    series = {name for spec in CATALOGUE.values() for name in spec.series()}
    recorded = {rule["record"] for group in found["groups"]
                for rule in group["rules"] if "record" in rule}

    read = set().union(*(metric_names(e) for e in rules.expressions(found)))

    assert read - recorded <= series, sorted(read - recorded - series)


def test_a_failing_service_breaches_the_error_rate_slo(
    store: StateStore, tmp_path: Path
) -> None:
    case = {
        "interval": "5s",
        "input_series": _traffic(requests=10, errors=5, slow=False),
        "promql_expr_test": [{
            "expr": rules.ERROR_RATIO,
            "eval_time": "1m",
            "exp_samples": [{"labels": (
                f'{rules.ERROR_RATIO}{{backend="billing", context="billing", '
                'slo_window="30s"}'
            ), "value": 0.5}],
        }],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "MigrateSloErrorRateBreach",
             "exp_alerts": [_alert(
                 "MigrateSloErrorRateBreach",
                 f"Error rate 50% of billing over 30s; the SLO is {SLO_TEXT}. "
                 "The router rolls billing's reads back to the monolith on a "
                 "breach.",
             )]},
            {"eval_time": "1m", "alertname": "MigrateSloLatencyBreach",
             "exp_alerts": []},
        ],
    }

    tested = _run_tests(tmp_path, rules.slo_rules(store.snapshot()), [case])

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_slow_service_breaches_the_latency_slo(
    store: StateStore, tmp_path: Path
) -> None:
    case = {
        "interval": "5s",
        "input_series": _traffic(requests=10, errors=0, slow=True),
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "MigrateSloLatencyBreach",
             "exp_alerts": [_alert(
                 "MigrateSloLatencyBreach",
                 f"p99 992.5ms of billing over 30s; the SLO is {SLO_TEXT}.",
             )]},
            {"eval_time": "1m", "alertname": "MigrateSloErrorRateBreach",
             "exp_alerts": []},
        ],
    }

    tested = _run_tests(tmp_path, rules.slo_rules(store.snapshot()), [case])

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_too_few_requests_judge_nothing(store: StateStore, tmp_path: Path) -> None:
    # Six requests in the 30 s window, all failed and slow: fewer than 20.
    case = {
        "interval": "5s",
        "input_series": _traffic(requests=1, errors=1, slow=True),
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": name, "exp_alerts": []}
            for name in ("MigrateSloErrorRateBreach", "MigrateSloLatencyBreach")
        ],
    }

    tested = _run_tests(tmp_path, rules.slo_rules(store.snapshot()), [case])

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_migrate_metrics_rules_writes_the_rules_of_the_state_store(
    store: StateStore, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "rules.yml"

    done = subprocess.run(
        [sys.executable, "-m", "migrate.cli", "metrics", "rules", "--out", str(out)],
        capture_output=True, text=True, cwd=REPOSITORY, timeout=120,
        env={**os.environ, "MIGRATE_HOME": str(tmp_path)},
    )

    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(out.read_text()) == rules.slo_rules(store.snapshot())
    assert f"wrote 5 rules to {out}" in done.stdout
