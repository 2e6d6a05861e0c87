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


def test_an_unknown_rollout_action_is_refused_by_name(
    running: tuple[str, AdminClient],
) -> None:
    _, client = running

    with pytest.raises(AdminUnavailable, match="it is pause, resume or stop"):
        client.post("/admin/contexts/billing/rollout", {"action": "skip"})
