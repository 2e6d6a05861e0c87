"""Every process of a running system exposes Prometheus metrics that promtool
accepts, and every metric the dashboard and the SLO rules read is among them.

Real processes: `migrate up` with billing extracted, half of billing's reads
on its service and its writes moved; orders placed and invoices read
through the router; then every scrape target `migrate up` wrote is scraped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from metric_names import metric_names, variable_metric_names
from prometheus_client.parser import text_string_to_metric_families
from workspaces import system_environment, unavailable

from migrate.demo import _reference_data
from migrate.extract.run import extract
from migrate.kernel.sql import create_engine
from migrate.observe import grafana, rules
from migrate.router.slo import Slo
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.settings import Settings
from migrate.sync.flip import move_writes
from migrate.system import System
from monolith.host import Monolith

pytestmark = pytest.mark.e2e
REPOSITORY = Path(__file__).resolve().parents[2]
FUNCTION = "northwind-billing-invoice_email"
RUNTIME = "billing-invoice-email"
_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)


@dataclasses.dataclass
class Scraped:
    system: System
    env: dict[str, str]
    scrapes: dict[str, str]
    rules: dict[str, object]

    def families(self) -> dict[str, str]:
        """Every metric family any target declared, with its type."""
        return {
            name: kind
            for text in self.scrapes.values()
            for name, kind in _TYPE.findall(text)
        }

    def series_names(self) -> set[str]:
        found: set[str] = set()
        for name, kind in self.families().items():
            found.add(name)
            if kind == "histogram":
                found |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        return found

    def value(self, process: str, name: str, **labels: str) -> float:
        return sum(
            sample.value
            for family in text_string_to_metric_families(self.scrapes[process])
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool is not installed (Debian's prometheus package)")
    return str(found)


def _targets(folder: Path) -> list[tuple[str, str, bool]]:
    found = []
    for name, token in (("targets.json", False), ("router.json", True)):
        for group in json.loads((folder / name).read_text()):
            labels = group["labels"]
            for address in group["targets"]:
                found.append((labels["process"],
                              f"http://{address}{labels['__metrics_path__']}",
                              token))
    return found


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    env = system_environment(tmp_path_factory.mktemp("measured"))
    system = System(Settings.from_env(env))
    settings = system.settings
    try:
        settings.home.mkdir(parents=True)
        upgrade(settings.monolith_url)
        seed(Monolith(settings.monolith_url), synthetic.generate(20))
        system.up()
        extract(system, "billing")
        system.up()
        move_writes(system, "billing")
        system.state.set_weight("billing", 50, "test", "half the reads")
        system.state.set_slo("billing", Slo(), "test", "guard billing")
        customers, products, _ = _reference_data(create_engine(settings.monolith_url))

        placed = []
        for customer in customers[:6]:
            answer = requests.post(f"{settings.router_url}/orders", json={
                "customer_id": customer,
                "lines": [{"product_id": products[0], "quantity": 1,
                           "discount": "0"}],
                "freight": "1.00",
            }, timeout=30)
            assert answer.status_code == 201, answer.text
            placed.append(answer.json()["order_id"])
        time.sleep(3)  # the invoices go through SNS and SQS to the service
        for order_id in placed * 3:
            requests.get(f"{settings.router_url}/invoices/{order_id}", timeout=30)

        deadline = time.monotonic() + 60
        folder = settings.prometheus_dir
        token = (folder / "router.token").read_text()
        while True:
            scrapes = {}
            for process, url, needs_token in _targets(folder):
                headers = {"Authorization": f"Bearer {token}"} if needs_token else {}
                answer = requests.get(url, headers=headers, timeout=10)
                assert answer.status_code == 200, (process, url, answer.text)
                scrapes[process] = answer.text
            found = Scraped(system, env, scrapes,
                            rules.slo_rules(system.state.snapshot()))
            if found.value(RUNTIME, "migrate_lambda_invocations_total") > 0 or (
                time.monotonic() > deadline
            ):
                break
            time.sleep(1)
        yield found
    finally:
        system.down()


def test_every_process_of_the_system_is_a_scrape_target(scraped: Scraped) -> None:
    running = set(scraped.system.supervisor.running()) - {"emulator"}

    assert set(scraped.scrapes) == running


def test_promtool_accepts_every_scrape(scraped: Scraped) -> None:
    promtool = _promtool()

    failed = {}
    for process, text in scraped.scrapes.items():
        checked = subprocess.run([promtool, "check", "metrics"], input=text,
                                 capture_output=True, text=True, timeout=60)
        if checked.returncode != 0:
            failed[process] = checked.stdout + checked.stderr

    assert failed == {}


def test_every_metric_the_dashboard_reads_is_emitted(scraped: Scraped) -> None:
    model = grafana.dashboard()
    read = set().union(*(metric_names(e) for e in grafana.expressions(model)))
    read |= set().union(
        *(variable_metric_names(q) for q in grafana.variable_queries(model))
    )

    assert read <= scraped.series_names(), sorted(read - scraped.series_names())


def test_every_metric_the_slo_rules_read_is_emitted(scraped: Scraped) -> None:
    found = scraped.rules
    recorded = {r["record"] for g in found["groups"] for r in g["rules"]  # type: ignore[index,attr-defined]
                if "record" in r}

    read = set().union(*(metric_names(e) for e in rules.expressions(found)))  # type: ignore[arg-type]

    assert recorded and (read - recorded) <= scraped.series_names()


def test_both_backends_of_billing_are_measured_side_by_side(
    scraped: Scraped,
) -> None:
    for backend in ("monolith", "billing"):
        assert scraped.value("router", "migrate_router_requests_total",
                             context="billing", backend=backend) > 0, backend
    assert scraped.value("billing-service", "migrate_http_requests_total",
                         context="billing") > 0
    assert scraped.value("monolith", "migrate_http_requests_total",
                         context="ordering", code="201") == 6


def test_the_exporter_reads_every_queue_outbox_and_direction(
    scraped: Scraped,
) -> None:
    from migrate.system import topology

    queues = {q.name for q in topology(scraped.system.manifest, ["billing"]).queues}
    exported = scraped.scrapes["exporter"]

    seen = {
        sample.labels["queue"]
        for family in text_string_to_metric_families(exported)
        if family.name == "migrate_queue_dead_letter_messages"
        for sample in family.samples
    }
    assert seen == queues
    lag = {
        (s.labels["context"], s.labels["direction"])
        for f in text_string_to_metric_families(exported)
        if f.name == "migrate_sync_lag_seconds" for s in f.samples
    }
    assert lag == {("billing", "to_service"), ("billing", "to_monolith")}
    assert 'database="billing"' in exported and 'database="monolith"' in exported


def test_the_lambda_runtime_counts_its_invocations(scraped: Scraped) -> None:
    assert scraped.value(RUNTIME, "migrate_lambda_invocations_total",
                         function=FUNCTION) > 0
    assert scraped.value(RUNTIME, "migrate_lambda_duration_seconds_count",
                         function=FUNCTION) > 0


def test_the_prometheus_configuration_is_ready_to_run(scraped: Scraped) -> None:
    folder = scraped.system.settings.prometheus_dir

    checked = subprocess.run(
        [_promtool(), "check", "config", "prometheus.yml"], cwd=folder,
        capture_output=True, text=True, timeout=60,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_migrate_metrics_targets_lists_them(scraped: Scraped) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "migrate.cli", "metrics", "targets", "--json"],
        capture_output=True, text=True, cwd=REPOSITORY, timeout=120,
        env={**os.environ, **scraped.env},
    )

    assert done.returncode == 0, done.stderr
    listed = {t["process"]: t for t in json.loads(done.stdout)["targets"]}
    assert set(listed) == set(scraped.scrapes)
    assert listed["router"]["token"] is True
