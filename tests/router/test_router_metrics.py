"""The router's counters as Prometheus metrics, on its admin listener."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from router_servers import EchoBackend, raw_exchange
from workspaces import unavailable

from migrate.router.admin import AdminClient
from migrate.router.http1 import MAX_HEAD
from migrate.router.slo import Slo
from migrate.router.state import StateStore

REPOSITORY = Path(__file__).resolve().parents[2]
TOKEN = "a-token-for-the-metrics-tests-0123456789"


@pytest.fixture
def running(store: StateStore) -> Iterator[tuple[str, AdminClient]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate.router", "--state", store.path,
         "--port", "0", "--log-level", "WARNING"],
        cwd=REPOSITORY, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "MIGRATE_ROUTER_TOKEN": TOKEN},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("router listening on"), line
        yield line.split()[-1], AdminClient.for_state(store.path)
    finally:
        process.terminate()
        process.wait(10)


def _scrape(client: AdminClient) -> str:
    answer = requests.get(client.url + "/metrics", timeout=5,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return answer.text


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_are_counted_per_route_group_and_backend(
    store: StateStore, running: tuple[str, AdminClient],
    monolith: EchoBackend, billing: EchoBackend,
) -> None:
    url, client = running
    store.set_weight("billing", 100, "test", "all reads to the service")
    client.post("/admin/refresh")

    for invoice in range(7):
        requests.get(f"{url}/invoices/{invoice}", timeout=5)
    for _ in range(3):
        requests.post(f"{url}/invoices/1/payments", json={}, timeout=5)
    samples = _samples(_scrape(client))

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert value("migrate_router_requests_total",
                 context="billing", backend="billing") == 7
    assert value("migrate_router_requests_total",
                 context="billing", backend="monolith") == 3
    assert value("migrate_router_request_duration_seconds_count",
                 context="billing", backend="billing") == 7
    assert value("migrate_router_request_duration_seconds_bucket",
                 context="billing", backend="billing", le="+Inf") == 7
    assert value("migrate_router_read_weight", context="billing") == 100
    assert value("migrate_router_writer", context="billing",
                 backend="monolith") == 1
    assert value("migrate_router_breaker_state", backend="billing",
                 state="closed") == 1


def test_a_server_error_counts_as_an_error_of_its_backend(
    store: StateStore, running: tuple[str, AdminClient], monolith: EchoBackend,
) -> None:
    url, client = running
    monolith.fail_next = 1

    requests.get(f"{url}/invoices/1", timeout=5)
    requests.get(f"{url}/invoices/2", timeout=5)
    samples = _samples(_scrape(client))

    key = frozenset({"context": "billing", "backend": "monolith"}.items())
    assert samples[("migrate_router_request_errors_total", key)] == 1
    assert samples[("migrate_router_requests_total", key)] == 2
    assert samples[("migrate_router_backend_failures_total",
                    frozenset({"backend": "monolith"}.items()))] == 1


def test_requests_refused_by_the_wire_layer_are_counted_by_code(
    running: tuple[str, AdminClient], monolith: EchoBackend,
) -> None:
    url, client = running
    port = int(url.rsplit(":", 1)[1])

    raw_exchange(port, b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 4"
                       b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    raw_exchange(port, b"GET /orders HTTP/1.1\r\n\r\n")
    raw_exchange(port, b"GET /orders HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEAD)
    samples = _samples(_scrape(client))

    def refused(code: str) -> float:
        return samples[("migrate_router_refused_total",
                        frozenset({"code": code}.items()))]

    assert refused("bad_request") == 1
    assert refused("missing_host") == 1
    assert refused("headers_too_large") == 1
    router = frozenset({"context": "(unmatched)", "backend": "router"}.items())
    assert samples[("migrate_router_requests_total", router)] == 3
    assert samples[("migrate_router_request_errors_total", router)] == 0
    assert monolith.received == []


def test_the_slo_verdict_is_a_metric(
    store: StateStore, running: tuple[str, AdminClient],
) -> None:
    _, client = running
    store.set_slo("billing", Slo(min_requests=5), "test", "guard billing")
    client.post("/admin/refresh")

    samples = _samples(_scrape(client))

    assert samples[("migrate_router_slo_verdict", frozenset(
        {"context": "billing", "verdict": "inconclusive"}.items()))] == 1


def test_metrics_need_the_admin_token(running: tuple[str, AdminClient]) -> None:
    _, client = running

    bare = requests.get(client.url + "/metrics", timeout=5)

    assert bare.status_code == 401
    assert "migrate_router" not in bare.text


def test_promtool_finds_nothing_to_fix_in_the_router_s_metrics(
    running: tuple[str, AdminClient],
) -> None:
    url, client = running
    requests.get(f"{url}/invoices/1", timeout=5)
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool is not installed (Debian's prometheus package)")

    checked = subprocess.run([promtool, "check", "metrics"], input=_scrape(client),
                             capture_output=True, text=True, timeout=30)

    assert checked.returncode == 0, checked.stdout + checked.stderr
