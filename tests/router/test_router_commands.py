"""The router's commands as a user runs them, and the bench's report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrate.router.bench import RouterBench, Row
from migrate.router.state import StateStore

REPOSITORY = Path(__file__).resolve().parents[2]


def _migrate(home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migrate.cli", *arguments],
        capture_output=True, text=True, cwd=REPOSITORY, timeout=300,
        env={**os.environ, "MIGRATE_HOME": str(home)},
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    state = StateStore(tmp_path / "router.db")
    state.set_backend("monolith", "http://127.0.0.1:8701")
    state.set_backend("billing", "http://127.0.0.1:8711")
    state.register_routes("billing", "billing", [
        ("GET", "/invoices/<int:invoice_id>", "invoice_id"),
        ("POST", "/invoices/<int:invoice_id>/payments", "invoice_id"),
    ])
    return tmp_path


def test_shadow_sets_the_share_and_rules_in_the_ledger(home: Path) -> None:
    done = _migrate(home, "shadow", "billing", "10", "--ignore", "$.generated_at",
                    "--noise", "--reason", "compare before 1 %")

    entry = [e for e in StateStore(home / "router.db").history("billing")
             if e.what == "shadow"][-1]
    assert done.returncode == 0, done.stderr
    assert "10 % of requests; ignoring $.generated_at; noise cancelled" in done.stdout
    assert (entry.what, entry.before, entry.reason) == (
        "shadow", "off", "compare before 1 %",
    )


def test_slo_sets_the_objective_from_human_units(home: Path) -> None:
    done = _migrate(home, "slo", "billing", "--max-error-rate", "1%",
                    "--max-p99", "250ms", "--window", "1m", "--json")

    payload = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert payload["slo"] == {"max_error_rate": 0.01, "max_p99_ms": 250.0,
                              "window_seconds": 60.0, "min_requests": 20}
    assert StateStore(home / "router.db").status()["billing"].slo is not None


def test_a_bad_slo_value_is_one_error_line_naming_it(home: Path) -> None:
    done = _migrate(home, "slo", "billing", "--max-error-rate", "lots")

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: error rate 'lots': a rate is like 1% or 0.01"
    )


def test_override_secret_prints_a_secret_and_keeps_its_hash(home: Path) -> None:
    done = _migrate(home, "override-secret")

    secret = done.stdout.strip()
    table = StateStore(home / "router.db").snapshot()
    assert done.returncode == 0, done.stderr
    assert len(secret) >= 16
    assert table.override_secret is not None
    assert secret not in table.override_secret


def test_pausing_without_a_rollout_says_there_is_none(home: Path) -> None:
    done = _migrate(home, "rollout", "pause", "billing")

    assert done.returncode == 1
    assert "there is no rollout to pause" in done.stderr


def test_pausing_a_running_rollout_records_it(home: Path) -> None:
    StateStore(home / "router.db").start_rollout("billing", (1, 5), 60, "ana", "go")

    done = _migrate(home, "rollout", "pause", "billing", "--reason", "lunch")

    rollout = StateStore(home / "router.db").rollout("billing")
    assert done.returncode == 0, done.stderr
    assert rollout is not None and (rollout.state, rollout.reason) == (
        "paused", "lunch"
    )


def test_diffs_without_a_running_router_says_so(home: Path) -> None:
    done = _migrate(home, "diffs", "billing")

    assert done.returncode == 1
    assert "is the router running" in done.stderr


def _row(label: str, peak: float, p50: float, p99: float) -> Row:
    return Row(label, peak, 0.5, 2.0, 500.0, p50, p99, 0)


def test_the_bench_report_says_by_how_much_the_router_falls_short() -> None:
    result = RouterBench(
        (_row("direct", 50_000, 0.20, 0.50), _row("router", 20_000, 1.50, 2.00),
         _row("bare", 30_000, 0.40, 0.90)),
        5.0, 500.0, 32, "wrk", "not installed: no nginx row",
        {"cores": 2, "processor": "test"},
    )

    report = result.report()

    assert not result.ok
    assert "[SHORT] the router adds 1.30 ms at p50" in report
    assert "short by 0.30 ms" in report
    assert "keeps 67% of the bare pass-through's peak" in report
    assert "[ok] the router adds 1.50 ms at p99" in report
    assert "nginx: not installed: no nginx row" in report
    assert result.as_json()["nginx_share"] is None


def test_the_bench_runs_every_row_and_reports_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "migrate.router.bench", "--seconds", "0.5",
         "--rate", "100", "--concurrency", "4", "--generator", "python",
         "--rounds", "1", "--json"],
        capture_output=True, text=True, cwd=REPOSITORY, timeout=300,
    )

    payload = json.loads(done.stdout)
    labels = [row["label"] for row in payload["rows"]]
    assert done.returncode == 0, done.stderr
    assert labels[:3] == ["direct", "router", "bare"]
    assert all(row["errors"] == 0 for row in payload["rows"])
    assert all(row["peak_per_second"] > 0 for row in payload["rows"])
    assert {g["name"] for g in payload["gates"]} == {
        "added p50 at rate", "added p99 at rate", "peak share of bare",
    }
    if "nginx" in labels:
        assert payload["nginx_share"] > 0
    else:
        assert payload["nginx"].startswith("not installed")


def test_dashboard_without_a_running_router_says_so(home: Path) -> None:
    done = _migrate(home, "dashboard")

    assert done.returncode == 1
    assert "is the router running" in done.stderr
    assert done.stderr.count("\n") == 1
