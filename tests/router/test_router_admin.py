"""The admin API: token-protected, on loopback, and what the CLI reads."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from router_servers import EchoBackend, raw_exchange, statuses

from migrate.router.admin import AdminClient, admin_file
from migrate.router.errors import AdminUnavailable
from migrate.router.http1 import MAX_HEAD
from migrate.router.slo import Slo
from migrate.router.state import StateStore

REPOSITORY = Path(__file__).resolve().parents[2]
TOKEN = "a-token-for-the-tests-only-0123456789"


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


def test_the_admin_api_listens_on_loopback_and_says_where(
    store: StateStore, running: tuple[str, AdminClient]
) -> None:
    path = admin_file(store.path)

    written = json.loads(path.read_text())

    assert written["url"].startswith("http://127.0.0.1:")
    assert written["token"] == TOKEN
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_call_without_the_token_is_refused(
    running: tuple[str, AdminClient],
) -> None:
    _, client = running

    bare = requests.get(client.url + "/admin/status", timeout=5)
    wrong = requests.get(client.url + "/admin/status", timeout=5,
                         headers={"Authorization": "Bearer guessed"})

    assert (bare.status_code, wrong.status_code) == (401, 401)
    assert "billing" not in bare.text


def test_a_huge_head_is_refused_before_the_token_is_asked_for(
    running: tuple[str, AdminClient],
) -> None:
    _, client = running
    port = int(client.url.rsplit(":", 1)[1])

    answer = raw_exchange(
        port, b"GET /admin/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEAD
    )

    assert statuses(answer) == [431]
    assert b'"headers_too_large"' in answer


def test_the_admin_api_is_not_on_the_routed_port(
    running: tuple[str, AdminClient], monolith: EchoBackend
) -> None:
    url, _ = running

    answer = requests.get(url + "/admin/status", timeout=5,
                          headers={"Authorization": f"Bearer {TOKEN}"})

    assert answer.headers["X-Migrate-Backend"] == "monolith"


def test_status_shows_the_routing_table(
    store: StateStore, running: tuple[str, AdminClient]
) -> None:
    _, client = running

    status = client.get("/admin/status")

    assert status["revision"] == store.revision()
    assert status["contexts"]["billing"]["read_weight"] == 0
    assert status["contexts"]["billing"]["writer"] == "monolith"


def test_a_weight_set_through_the_api_is_in_the_ledger(
    store: StateStore, running: tuple[str, AdminClient]
) -> None:
    _, client = running
    store.set_weight("billing", 30, "ops", "canary")

    client.post("/admin/contexts/billing/weight",
                {"weight": 10, "actor": "script:ana", "reason": "fewer"})

    last = [e for e in store.history("billing") if e.what == "read_weight"][-1]
    assert (last.actor, last.after, last.reason) == ("script:ana", "10", "fewer")
    assert client.get("/admin/status")["contexts"]["billing"]["read_weight"] == 10


def test_a_router_outside_its_system_cannot_ask_the_gate_and_refuses_raises(
    store: StateStore, running: tuple[str, AdminClient]
) -> None:
    _, client = running

    with pytest.raises(AdminUnavailable) as refused:
        client.post("/admin/contexts/billing/weight",
                    {"weight": 10, "actor": "script:ana", "reason": "canary"})

    assert "409: billing's contracts cannot be checked here" in str(refused.value)
    assert "is not the system's" in str(refused.value)
    assert store.status()["billing"].read_weight == 0


def test_a_bad_weight_through_the_api_names_the_rule(
    running: tuple[str, AdminClient],
) -> None:
    _, client = running

    with pytest.raises(AdminUnavailable, match="weights run 0-100"):
        client.post("/admin/contexts/billing/weight", {"weight": 140})


def test_the_slo_verdict_is_read_through_the_api(
    store: StateStore, running: tuple[str, AdminClient]
) -> None:
    _, client = running
    store.set_slo("billing", Slo(0.01, 300, 30, 20), "ops", "guard")
    client.post("/admin/refresh")

    verdict = client.verdict("billing")

    assert verdict.kind == "inconclusive"
    assert verdict.requests == 0


def test_a_context_without_an_slo_says_how_to_set_one(
    running: tuple[str, AdminClient],
) -> None:
    _, client = running

    with pytest.raises(AdminUnavailable, match="migrate slo billing"):
        client.verdict("billing")


def test_without_a_running_router_the_client_says_so(tmp_path: Path) -> None:
    with pytest.raises(AdminUnavailable, match="is the router running"):
        AdminClient.for_state(tmp_path / "router.db")


def test_a_rollout_paused_through_the_api_is_in_the_ledger(
    store: StateStore, running: tuple[str, AdminClient]
) -> None:
    _, client = running
    store.start_rollout("billing", (1, 5), 300, "ops", "canary")

    client.post("/admin/contexts/billing/rollout",
                {"action": "pause", "actor": "script:ana", "reason": "lunch"})

    last = store.history("billing")[-1]
    assert (last.actor, last.what, last.after, last.reason) == (
        "script:ana", "rollout", "paused", "lunch",
    )
    assert store.rollout("billing").state == "paused"  # type: ignore[union-attr]


def _call(
    client: AdminClient, method: str, path: str, body: bytes | None = None
) -> requests.Response:
    return requests.request(
        method, client.url + path, data=body, timeout=10,
        headers={"Authorization": f"Bearer {TOKEN}",
                 "Content-Type": "application/json"},
    )


def test_an_unknown_rollout_action_is_a_bad_request_naming_the_actions(
    store: StateStore, running: tuple[str, AdminClient],
) -> None:
    _, client = running
    store.start_rollout("billing", (1, 5), 300, "ops", "canary")
    before = store.history("billing")

    answer = _call(client, "POST", "/admin/contexts/billing/rollout",
                   b'{"action": "skip"}')

    assert answer.status_code == 400
    assert answer.json() == {
        "error": "bad_request",
        "message": "field 'action' 'skip': action is pause, resume or stop",
    }
    assert store.history("billing") == before


LONG = "x" * 100_000


@pytest.mark.parametrize(("call", "body", "message"), [
    ("weight", b"[1]", "body [1]: a body is a JSON object"),
    ("weight", b'"x"', "body 'x': a body is a JSON object"),
    ("weight", b"{weight", "body b'{weight': not JSON (Expecting property name "
                          "enclosed in double quotes: line 1 column 2 (char 1)); "
                          "a body is a JSON object"),
    ("weight", b"{}", "field 'weight' is missing: weight is a whole percent 0-100"),
    ("weight", b'{"weight": 0, "route": 123}',
     "field 'route' 123: route is text naming a read route of the context, "
     "as 'GET /invoices/<int:invoice_id>'"),
    ("weight", b'{"weight": 0, "rotue": "GET /invoices/<int:invoice_id>"}',
     "field 'rotue' 'GET /invoices/<int:invoice_id>': not taken here; the fields "
     "are weight, route, actor, reason"),
    ("weight", b'{"weight": 0, "actor": 123}',
     "field 'actor' 123: actor is text of at most 500 characters"),
    ("weight", b'{"weight": 0, "reason": ["x"]}',
     "field 'reason' ['x']: reason is text of at most 500 characters"),
    ("weight", f'{{"weight": 0, "reason": "{LONG}"}}'.encode(),
     f"field 'reason' {repr(LONG)[:60]}… (100,000 characters): reason is text "
     "of at most 500 characters"),
    ("weight", b'{"weight": 0, "reason": "ok\\n2026-12-04 admin set 100"}',
     "field 'reason' 'ok\\n2026-12-04 admin set 100' holds the control character "
     "'\\n': reason is one line of text"),
    ("weight", b'{"weight": 0, "weight": 5}',
     "field 'weight' is given twice; a field is given once"),
    ("rollback", b"[]", "body []: a body is a JSON object"),
    ("rollback", b'{"actor": ["ana"]}',
     "field 'actor' ['ana']: actor is text of at most 500 characters"),
    ("rollout", b"[]", "body []: a body is a JSON object"),
    ("rollout", b'{"reason": "lunch"}',
     "field 'action' is missing: action is pause, resume or stop"),
    ("rollout", b'{"action": 1}', "field 'action' 1: action is pause, resume or stop"),
])
def test_a_body_the_call_does_not_take_is_a_bad_request_naming_the_field(
    store: StateStore, running: tuple[str, AdminClient], call: str, body: bytes,
    message: str,
) -> None:
    _, client = running
    store.set_weight("billing", 30, "ops", "canary")
    store.start_rollout("billing", (1, 5), 300, "ops", "canary")
    before = store.history("billing")

    answer = _call(client, "POST", f"/admin/contexts/billing/{call}", body)

    assert answer.status_code == 400
    assert answer.json() == {"error": "bad_request", "message": message}
    assert store.history("billing") == before


def test_a_reason_of_500_characters_reaches_the_ledger(
    store: StateStore, running: tuple[str, AdminClient]
) -> None:
    _, client = running
    store.set_weight("billing", 30, "ops", "canary")

    client.post("/admin/contexts/billing/weight",
                {"weight": 10, "actor": "script:ana", "reason": "y" * 500})

    assert store.history("billing")[-1].reason == "y" * 500


@pytest.mark.parametrize("path", ["/admin/shadow/nosuch", "/admin/slo/nosuch"])
def test_an_unknown_context_is_refused_naming_the_known_ones(
    running: tuple[str, AdminClient], path: str
) -> None:
    _, client = running

    answer = _call(client, "GET", path)

    assert answer.status_code == 404
    assert answer.json() == {
        "error": "unknown_context",
        "message": "context 'nosuch' is not registered with the router; "
                   "known contexts: billing",
    }


def test_a_change_to_an_unknown_context_is_refused_before_its_body_is_judged(
    running: tuple[str, AdminClient],
) -> None:
    _, client = running

    answer = _call(client, "POST", "/admin/contexts/nosuch/weight",
                   b'{"weight": "x"}')

    assert answer.status_code == 404
    assert answer.json()["error"] == "unknown_context"


def test_a_refresh_takes_no_body(running: tuple[str, AdminClient]) -> None:
    _, client = running

    answer = _call(client, "POST", "/admin/refresh", b'{"x": 1}')

    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"


def test_a_context_registered_after_the_router_started_is_known_at_once(
    store: StateStore, running: tuple[str, AdminClient], billing: EchoBackend
) -> None:
    _, client = running
    store.set_backend("shipping", billing.url)
    store.register_routes("shipping", "shipping", [
        ("GET", "/shipments/<int:shipment_id>", "shipment_id"),
    ])

    found = client.shadow("shipping")

    assert found["context"] == "shipping"


@pytest.mark.parametrize("arguments", [("diffs", "nosuch"),
                                       ("diffs", "nosuch", "--json"),
                                       ("slo", "nosuch")])
def test_the_cli_refuses_an_unknown_context_while_the_router_runs(
    store: StateStore, running: tuple[str, AdminClient], arguments: tuple[str, ...]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "migrate.cli", *arguments],
        capture_output=True, text=True, cwd=REPOSITORY, timeout=120,
        env={**os.environ, "MIGRATE_HOME": str(Path(store.path).parent),
             "MIGRATE_ROUTER_TOKEN": TOKEN},
    )

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: context 'nosuch' is not registered with the router; "
        "known contexts: billing"
    )
