"""`migrate traces`, `traces show` and `traces map` over a real collector.

The collector runs as its own process; the segments reach it as UDP
datagrams in the daemon's protocol, the way every process of the system
sends them: an order placed through the router (router -> monolith, SQL,
the relay's SNS publish, the billing service consuming it, the billing
relay's publish), an invoice e-mail function whose own trace links to the
billing relay's publish, a read that is not found (404) and one that fails
(500).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate.observe.tracing import new_id
from migrate.settings import Settings

MIGRATE = [sys.executable, "-m", "migrate.cli"]
PROTOCOL = b'{"format": "json", "version": 1}\n'
ORDER = "1-67a1b2c3-0123456789abcdef01234567"
FUNCTION = "1-67a1b2c4-00000000000000000000f00d"
MISSING = "1-67a1b2c5-0000000000000000000000aa"
FAILING = "1-67a1b2c6-0000000000000000000000bb"
NOT_STORED = "1-67a1b2c7-000000000000000000000000"


def migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MIGRATE, *args], env=env, capture_output=True,
                          text=True, timeout=60)


def as_json(env: dict[str, str], *args: str) -> Any:
    answer = migrate(env, *args, "--json")
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


class Trace:
    """Segment documents of one trace, times in ms after `at`."""

    def __init__(self, trace_id: str, at: float):
        self.trace_id = trace_id
        self.at = at
        self.documents: list[dict[str, Any]] = []

    def segment(self, name: str, start_ms: float, end_ms: float,
                parent: str | None = None, **fields: Any) -> dict[str, Any]:
        document = {"name": name, "id": new_id(), "trace_id": self.trace_id,
                    "start_time": self.at + start_ms / 1000,
                    "end_time": self.at + end_ms / 1000, **fields}
        if parent:
            document["parent_id"] = parent
        self.documents.append(document)
        return document

    def sub(self, name: str, start_ms: float, end_ms: float,
            **fields: Any) -> dict[str, Any]:
        return {"name": name, "id": new_id(), "start_time": self.at + start_ms / 1000,
                "end_time": self.at + end_ms / 1000, **fields}


def http(method: str, url: str, status: int) -> dict[str, Any]:
    return {"http": {"request": {"method": method, "url": url},
                     "response": {"status": status}}}


def sql(query: str) -> dict[str, Any]:
    return {"namespace": "remote", "sql": {"database_type": "sqlite",
                                           "sanitized_query": query}}


def sns(topic: str) -> dict[str, Any]:
    return {"namespace": "aws", "aws": {
        "operation": "PublishBatch",
        "topic_arn": f"arn:aws:sns:us-east-1:123456789012:{topic}"}}


def the_story(at: float) -> tuple[list[Trace], dict[str, str]]:
    order = Trace(ORDER, at)
    router = order.segment("router", 0, 40, **http("POST", "/orders", 201),
                           annotations={"context": "ordering",
                                        "backend": "monolith"})
    monolith = order.segment(
        "monolith", 1, 31, router["id"],
        **http("POST", "http://127.0.0.1:8701/orders", 201),
        annotations={"context": "ordering", "route": "POST /orders"},
        subsegments=[],
    )
    monolith["subsegments"].append(order.sub(
        "monolith.db", 2, 3,
        **sql("SELECT orders.order_id, orders.customer_id, orders.freight_cents "
              "\nFROM orders \nWHERE orders.order_id = ?")))
    insert = order.sub("monolith.db", 4, 6, **sql(
        "INSERT INTO orders (order_id, customer_id) VALUES (?, ?)"))
    publish = order.sub("SNS", 51, 61, **sns("northwind-ordering"))
    order.segment("monolith-relay", 50, 61, monolith["id"], subsegments=[publish])
    service = order.segment("billing-service", 70, 90, publish["id"],
                            annotations={"context": "billing",
                                         "entrypoint": "on_ordering_event"})
    # A subsegment the SDK streamed on its own, naming its parent.
    order.documents.append({**order.sub("billing.db", 72, 74, **sql(
        "INSERT INTO invoices (invoice_id, total_cents) VALUES (?, ?)")),
        "type": "subsegment", "trace_id": ORDER, "parent_id": service["id"]})
    billing_publish = order.sub("SNS", 101, 109, **sns("northwind-billing"))
    order.segment("billing-relay", 100, 110, service["id"],
                  subsegments=[billing_publish])

    function = Trace(FUNCTION, at + 0.2)
    function.segment(
        "northwind-billing-invoice_email", 0, 25, origin="AWS::Lambda::Function",
        annotations={"batch_size": 1},
        links=[{"trace_id": ORDER, "id": billing_publish["id"],
                "attributes": {"message_id": "m-1"}}],
        subsegments=[function.sub("## invoice_email", 2, 20, namespace="local")],
    )

    missing = Trace(MISSING, at + 1)
    missing_router = missing.segment("router", 0, 10,
                                     **http("GET", "/invoices/99999", 404),
                                     error=True)
    missing.segment("monolith", 1, 9, missing_router["id"],
                    **http("GET", "http://127.0.0.1:8701/invoices/99999", 404),
                    error=True)

    failing = Trace(FAILING, at + 2)
    failing_router = failing.segment("router", 0, 50,
                                     **http("GET", "/invoices/7", 500), fault=True)
    failing.segment(
        "monolith", 1, 49, failing_router["id"],
        **http("GET", "http://127.0.0.1:8701/invoices/7", 500), fault=True,
        cause={"exceptions": [{"id": new_id(), "type": "OperationalError",
                               "message": "database is locked"}]},
    )
    ids = {"router": router["id"], "monolith": monolith["id"],
           "publish": billing_publish["id"], "service": service["id"],
           "insert": insert["id"]}
    monolith["subsegments"].append(insert)
    return [order, function, missing, failing], ids


def _send(address: str, documents: list[dict[str, Any]]) -> None:
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for document in documents:
            sock.sendto(PROTOCOL + json.dumps(document).encode(), (host, int(port)))


def _received(settings: Settings) -> int:
    url = f"http://127.0.0.1:{settings.collector_http_port}/health"
    with urllib.request.urlopen(url, timeout=2) as reply:
        return int(json.load(reply)["received"])


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from workspaces import system_environment

    env = system_environment(tmp_path_factory.mktemp("traces"))
    settings = Settings.from_env(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate.observe.collector",
         "--listen", settings.trace_address, "--store", str(settings.traces_path),
         "--http-port", str(settings.collector_http_port)],
        env=env, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _received(settings)
                break
            except OSError:
                assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the collector did not start"
                time.sleep(0.1)

        traces, ids = the_story(time.time() - 60)
        documents = [d for t in traces for d in t.documents]
        _send(settings.trace_address, documents)
        while _received(settings) < len(documents):
            assert time.monotonic() < deadline, "datagrams were lost"
            time.sleep(0.1)
        yield {**env, **{f"ID_{k.upper()}": v for k, v in ids.items()}}
    finally:
        process.terminate()
        process.wait(10)


def _named(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, [s["name"] for s in spans]
    return found[0]


def test_the_list_shows_the_newest_trace_first_with_request_status_and_services(
    collector: dict[str, str],
) -> None:
    listed = as_json(collector, "traces")

    assert [t["trace_id"] for t in listed] == [FAILING, MISSING, FUNCTION, ORDER]
    order = listed[-1]
    assert order["request"] == "POST /orders"
    assert order["status"] == 201
    assert order["duration_ms"] == pytest.approx(110, abs=0.01)
    assert order["segments"] == 5
    assert order["services"] == ["router", "monolith", "monolith-relay",
                                 "billing-service", "billing-relay"]
    assert (order["fault"], order["error"]) == (False, False)
    assert (listed[1]["status"], listed[1]["error"]) == (404, True)
    assert (listed[0]["status"], listed[0]["fault"]) == (500, True)
    assert listed[2]["links_to"] == [ORDER]


def test_the_list_for_people_has_a_line_per_trace(collector: dict[str, str]) -> None:
    answer = migrate(collector, "traces", "--limit", "2")

    lines = answer.stdout.splitlines()
    assert answer.returncode == 0
    assert len(lines) == 3
    assert FAILING in lines[1] and "GET /invoices/7" in lines[1] and "fault" in lines[1]
    assert MISSING in lines[2] and "404" in lines[2] and "error" in lines[2]


def test_show_hangs_every_span_below_its_parent_whichever_process_sent_it(
    collector: dict[str, str],
) -> None:
    shown = as_json(collector, "traces", "show", ORDER)

    (router,) = shown["spans"]
    monolith = _named(router["children"], "monolith")
    relay = _named(monolith["children"], "monolith-relay")
    publish = _named(relay["children"], "SNS")
    service = _named(publish["children"], "billing-service")
    streamed = _named(service["children"], "billing.db")
    assert router["offset_ms"] == 0
    assert monolith["offset_ms"] == pytest.approx(1, abs=0.01)
    assert monolith["duration_ms"] == pytest.approx(30, abs=0.01)
    assert [c["name"] for c in monolith["children"]] == [
        "monolith.db", "monolith.db", "monolith-relay"]
    assert monolith["annotations"] == {"context": "ordering",
                                       "route": "POST /orders"}
    assert publish["resource"] == "northwind-ordering"
    assert streamed["kind"] == "subsegment" and streamed["service"] == "billing-service"
    assert streamed["offset_ms"] == pytest.approx(72, abs=0.01)


def test_show_prints_a_tree_with_offsets_durations_and_short_sql(
    collector: dict[str, str],
) -> None:
    answer = migrate(collector, "traces", "show", ORDER)

    text = answer.stdout
    assert answer.returncode == 0
    assert f"Trace {ORDER}: POST /orders -> 201, 110.0 ms, 5 segments" in text
    assert "0.0 ms     40.0 ms  router  POST /orders  201" in text
    assert "1.0 ms     30.0 ms  └─ monolith  POST /orders  201" in text
    assert ("├─ monolith.db  [remote]  SELECT … FROM orders WHERE "
            "orders.order_id = ?") in text
    assert "INSERT INTO orders (order_id, customer_id) VALUES (?, ?)" in text
    assert "PublishBatch northwind-ordering" in text
    assert "route=POST /orders" in text


def test_a_function_s_trace_names_the_span_it_links_to(
    collector: dict[str, str],
) -> None:
    shown = as_json(collector, "traces", "show", FUNCTION)
    text = migrate(collector, "traces", "show", FUNCTION).stdout

    assert shown["links"] == [{
        "from_span": shown["spans"][0]["id"], "trace_id": ORDER,
        "span_id": collector["ID_PUBLISH"], "target": "SNS northwind-billing",
        "service": "billing-relay",
    }]
    assert shown["spans"][0]["origin"] == "AWS::Lambda::Function"
    assert f"links to trace {ORDER} (SNS northwind-billing of billing-relay)" in text


def test_the_producer_s_trace_shows_the_traces_linked_from_it(
    collector: dict[str, str],
) -> None:
    shown = as_json(collector, "traces", "show", ORDER)
    text = migrate(collector, "traces", "show", ORDER).stdout

    assert [t["trace_id"] for t in shown["linked_from"]] == [FUNCTION]
    assert "Linked from this trace (1):" in text
    assert f"Trace {FUNCTION}: northwind-billing-invoice_email" in text
    assert "## invoice_email" in text


def test_a_failed_span_shows_its_cause(collector: dict[str, str]) -> None:
    text = migrate(collector, "traces", "show", FAILING).stdout

    assert "monolith  GET /invoices/7  500" in text
    assert "! OperationalError: database is locked" in text


def test_the_map_counts_calls_errors_faults_and_latency_per_edge(
    collector: dict[str, str],
) -> None:
    found = as_json(collector, "traces", "map")
    edges = {(e["source"], e["target"], e["kind"]): e for e in found["edges"]}

    to_monolith = edges[("router", "monolith", "call")]
    assert (to_monolith["calls"], to_monolith["errors"], to_monolith["faults"]) == (
        3, 1, 1)
    assert to_monolith["mean_ms"] == pytest.approx((30 + 8 + 48) / 3, abs=0.01)
    assert to_monolith["p99_ms"] == pytest.approx(48, abs=0.01)
    assert edges[("client", "router", "call")]["calls"] == 3
    assert edges[("monolith", "monolith.db", "call")]["calls"] == 2
    assert edges[("monolith-relay", "SNS northwind-ordering", "call")]["calls"] == 1
    assert edges[("SNS northwind-ordering", "billing-service", "call")][
        "mean_ms"] == pytest.approx(20, abs=0.01)
    assert edges[("billing-service", "billing.db", "call")]["calls"] == 1
    link = edges[("SNS northwind-billing", "northwind-billing-invoice_email",
                  "link")]
    assert (link["calls"], link["mean_ms"]) == (1, pytest.approx(25, abs=0.01))
    kinds = {n["name"]: n["kind"] for n in found["nodes"]}
    assert kinds["northwind-billing-invoice_email"] == "function"
    assert kinds["monolith.db"] == "database"
    assert kinds["SNS northwind-billing"] == "aws"


def test_the_map_for_people_draws_links_dashed(collector: dict[str, str]) -> None:
    answer = migrate(collector, "traces", "map")

    rows = [line.split() for line in answer.stdout.splitlines()]
    assert answer.returncode == 0
    assert ["router", "-->", "monolith", "3", "1", "1"] == rows[
        [r[:3] for r in rows].index(["router", "-->", "monolith"])][:6]
    assert any(r[:4] == ["SNS", "northwind-billing", "..>",
                         "northwind-billing-invoice_email"] for r in rows)


def test_an_unknown_trace_is_refused_naming_it(collector: dict[str, str]) -> None:
    answer = migrate(collector, "traces", "show", NOT_STORED)

    assert answer.returncode == 1
    assert answer.stderr.strip() == (
        f"error: no trace {NOT_STORED} in the store; `migrate traces` lists the "
        "recent ones"
    )


def test_a_malformed_trace_id_is_refused_with_the_shape_of_one(
    collector: dict[str, str],
) -> None:
    answer = migrate(collector, "traces", "show", "1-abc")

    assert answer.returncode == 1
    assert "'1-abc' is not a trace id" in answer.stderr
    assert answer.stderr.count("\n") == 1


def test_without_a_store_the_answer_is_to_run_migrate_up(
    workspace: dict[str, str],
) -> None:
    listed = migrate(workspace, "traces")
    mapped = migrate(workspace, "traces", "map")

    store = Path(workspace["MIGRATE_HOME"]) / "traces.db"
    for answer in (listed, mapped):
        assert answer.returncode == 1
        assert f"no traces at {store}" in answer.stderr
        assert "`migrate up`" in answer.stderr
    assert not store.exists()
