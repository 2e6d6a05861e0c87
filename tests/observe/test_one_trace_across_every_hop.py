"""An order placed through the router is one trace, from the router through
ordering, SNS and SQS into the billing service; the e-mail function that the
invoice sets off has a trace of its own, linked to it.

Real processes: `migrate up` with billing extracted and its writes moved,
every process sending its segments over UDP to the system's collector and
writing JSON lines to its log; `migrate traces` and `migrate logs` read
them as a user would.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from workspaces import system_environment

from migrate.demo import _reference_data
from migrate.extract.run import extract
from migrate.kernel.sql import create_engine
from migrate.observe.tracing import new_trace_id
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.settings import Settings
from migrate.sync.flip import move_writes
from migrate.system import System
from monolith.host import Monolith

pytestmark = pytest.mark.e2e
FUNCTION = "northwind-billing-invoice_email"


@dataclasses.dataclass
class Traced:
    env: dict[str, str]
    trace_id: str
    order_id: int
    documents: list[dict[str, Any]]
    function: dict[str, Any]
    function_documents: list[dict[str, Any]]

    def named(self, name: str) -> dict[str, Any]:
        found = [d for d in self.documents if d["name"] == name]
        assert len(found) == 1, [d["name"] for d in self.documents]
        return found[0]

    def publish(
        self, relay: str, call_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The relay's segment holding the SNS call `call_id`, and the call.
        A relay sends a segment per event of the trace, and one order sets
        off several (its row images, shipping's plan): the hop is the one
        whose call the next hop names."""
        found = [
            (d, s) for d in self.documents if d["name"] == relay
            for s in d.get("subsegments", []) if s["id"] == call_id
        ]
        assert len(found) == 1, (call_id, [d for d in self.documents
                                           if d["name"] == relay])
        return found[0]


def _documents(store: Path, trace_id: str) -> list[dict[str, Any]]:
    if not store.exists():
        return []
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT document FROM documents WHERE trace_id = ?", (trace_id,)
        ).fetchall()
    return [json.loads(row[0]) for row in rows]


def _linked_to(store: Path, trace_id: str) -> list[dict[str, Any]]:
    if not store.exists():
        return []
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT document FROM documents WHERE name = ?", (FUNCTION,)
        ).fetchall()
    found = [json.loads(row[0]) for row in rows]
    return [
        d for d in found
        if any(link["trace_id"] == trace_id for link in d.get("links", []))
    ]


def _subsegments(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for sub in document.get("subsegments", []):
        yield sub
        yield from _subsegments(sub)


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    env = system_environment(tmp_path_factory.mktemp("traced"))
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
        customers, products, _ = _reference_data(create_engine(settings.monolith_url))
        trace_id = new_trace_id()

        placed = requests.post(
            f"{settings.router_url}/orders",
            json={
                "customer_id": customers[0],
                "lines": [{"product_id": products[0], "quantity": 2,
                           "discount": "0"}],
                "freight": "4.50",
            },
            headers={"X-Amzn-Trace-Id": f"Root={trace_id};Sampled=1"},
            timeout=30,
        )
        assert placed.status_code == 201, placed.text

        store = settings.traces_path
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            linked = _linked_to(store, trace_id)
            names = {d["name"] for d in _documents(store, trace_id)}
            if linked and {"billing-service", "billing-relay"} <= names:
                break
            time.sleep(0.5)
        linked = _linked_to(store, trace_id)
        assert linked, f"no linked trace of {FUNCTION} in {store}"
        function = linked[0]
        time.sleep(1)  # the handler's own subsegments follow its segment
        yield Traced(
            env,
            trace_id,
            placed.json()["order_id"],
            _documents(store, trace_id),
            function,
            _documents(store, function["trace_id"]),
        )
    finally:
        system.down()


def test_the_router_the_monolith_the_relay_and_the_service_share_one_trace(
    traced: Traced,
) -> None:
    names = {d["name"] for d in traced.documents}

    assert {"router", "monolith", "monolith-relay", "billing-service"} <= names
    assert {d["trace_id"] for d in traced.documents} == {traced.trace_id}


def test_each_hop_hangs_below_the_one_that_called_it(traced: Traced) -> None:
    router = traced.named("router")
    monolith = traced.named("monolith")
    service = [
        d for d in traced.documents
        if d["name"] == "billing-service"
        and d.get("annotations", {}).get("entrypoint") == "on_ordering_event"
    ]
    assert len(service) == 1

    relay, publish = traced.publish("monolith-relay", service[0]["parent_id"])

    assert monolith["parent_id"] == router["id"]
    assert relay["parent_id"] == monolith["id"]
    assert (publish["name"], publish["namespace"]) == ("SNS", "aws")
    assert publish["aws"]["topic_arn"].endswith(":northwind-ordering")


def test_each_segment_says_where_the_request_went(traced: Traced) -> None:
    router = traced.named("router")
    monolith = traced.named("monolith")

    assert router["annotations"]["backend"] == "monolith"
    assert router["http"]["request"] == {"method": "POST", "url": "/orders"}
    assert router["http"]["response"] == {"status": 201}
    assert monolith["annotations"] == {"context": "ordering", "route": "POST /orders"}
    assert monolith["http"]["response"]["status"] == 201


def test_sql_statements_are_subsegments_of_the_host_that_ran_them(
    traced: Traced,
) -> None:
    monolith = traced.named("monolith")
    service = [d for d in traced.documents if d["name"] == "billing-service"]

    queries = [
        s["sql"]["sanitized_query"] for s in _subsegments(monolith) if "sql" in s
    ]
    assert any(q.startswith("INSERT INTO orders") for q in queries)
    assert any(q.startswith("INSERT INTO ordering_outbox") for q in queries)
    service_queries = [
        s["sql"]["sanitized_query"]
        for d in service for s in _subsegments(d) if "sql" in s
    ]
    assert any(q.startswith("INSERT INTO invoices") for q in service_queries)


def test_the_e_mail_function_starts_its_own_trace_linked_to_the_order_s(
    traced: Traced,
) -> None:
    function = traced.function

    assert function["trace_id"] != traced.trace_id
    assert function["origin"] == "AWS::Lambda::Function"
    (link,) = function["links"]
    _, publish = traced.publish("billing-relay", link["id"])
    assert link["trace_id"] == traced.trace_id
    assert publish["aws"]["topic_arn"].endswith(":northwind-billing")


def test_the_handler_s_own_work_is_recorded_in_the_function_s_trace(
    traced: Traced,
) -> None:
    handler = [
        d for d in traced.function_documents
        if d["id"] != traced.function["id"]
    ]

    assert handler, "the handler sent no subsegment"
    assert {d.get("parent_id") for d in handler} == {traced.function["id"]}


def _migrate(traced: Traced, *args: str) -> Any:
    answer = subprocess.run(
        [sys.executable, "-m", "migrate.cli", *args, "--json"], env=traced.env,
        capture_output=True, text=True, timeout=60,
    )
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


def _child(span: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in span["children"] if c["name"] == name]
    assert found, (name, [c["name"] for c in span["children"]])
    return found[0]


def test_migrate_traces_show_draws_the_order_from_the_router_to_the_service(
    traced: Traced,
) -> None:
    shown = _migrate(traced, "traces", "show", traced.trace_id)

    (router,) = shown["spans"]
    monolith = _child(router, "monolith")
    publish = _child(_child(monolith, "monolith-relay"), "SNS")
    service = _child(publish, "billing-service")
    assert (router["name"], shown["request"], shown["status"]) == (
        "router", "POST /orders", 201)
    assert publish["resource"] == "northwind-ordering"
    assert any(c.get("sql", "").startswith("INSERT INTO invoices")
               for c in service["children"])
    assert FUNCTION in [t["root"] for t in shown["linked_from"]]


def test_migrate_traces_map_shows_each_hop_and_the_link_to_the_function(
    traced: Traced,
) -> None:
    found = _migrate(traced, "traces", "map")

    edges = {(e["source"], e["target"], e["kind"]) for e in found["edges"]}
    assert {
        ("router", "monolith", "call"),
        ("monolith-relay", "SNS northwind-ordering", "call"),
        ("SNS northwind-ordering", "billing-service", "call"),
        ("billing-relay", "SNS northwind-billing", "call"),
        ("SNS northwind-billing", FUNCTION, "link"),
    } <= edges


def test_every_process_writes_flat_json_lines(traced: Traced) -> None:
    logs = Path(traced.env["MIGRATE_HOME"]) / "logs"

    # The processes still run: a last line without its newline is still
    # being written.
    written = {path.stem: path.read_text().split("\n")[:-1]
               for path in logs.glob("*.log")}
    assert {"emulator", "collector", "monolith", "router", "monolith-relay",
            "billing-service", "billing-relay", "billing-follower",
            "billing-invoice-email"} <= set(written)
    for process, lines in written.items():
        assert lines, process
        for line in lines:
            fields = json.loads(line)
            assert isinstance(fields, dict), (process, line)
            assert {"level", "message"} <= set(fields), (process, line)
            assert {"time", "timestamp"} & set(fields), (process, line)
            # CloudWatch Logs Insights reads each top-level field of a line.
            assert not [k for k, v in fields.items()
                        if isinstance(v, dict | list)], (process, line)


def test_migrate_logs_gathers_a_trace_s_lines_across_processes(
    traced: Traced,
) -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "migrate.cli", "logs", "--json", "--trace",
         traced.function["trace_id"]],
        env=traced.env, capture_output=True, text=True, timeout=60,
    )

    lines = [json.loads(row) for row in answer.stdout.splitlines()]
    assert answer.returncode == 0, answer.stderr
    assert {line["process"] for line in lines} == {"billing-invoice-email"}
    assert any(line["message"] == "invoice e-mail" for line in lines)
