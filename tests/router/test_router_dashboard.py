"""The dashboard on a real router process: who may look, who may steer, and
that every move it makes is the store's, with the gate asked first."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from router_servers import EchoBackend

from migrate.router.admin import AdminClient
from migrate.router.errors import AdminUnavailable
from migrate.router.state import StateStore

REPOSITORY = Path(__file__).resolve().parents[2]
TOKEN = "a-token-for-the-dashboard-tests-0123456789"


class Dashboard:
    """The running router's dashboard, and a browser-like way to use it."""

    def __init__(self, url: str, routed: str, store: StateStore):
        self.url = url
        self.routed = routed
        self.store = store

    def login(self, token: str = TOKEN) -> tuple[requests.Session, str]:
        """A logged-in session and its CSRF token, as the page gives it."""
        browser = requests.Session()
        answer = browser.post(f"{self.url}/dashboard/login", data={"token": token},
                              headers={"Origin": self.url}, allow_redirects=False,
                              timeout=10)
        assert answer.status_code == 303, answer.text
        page = browser.get(f"{self.url}/dashboard", timeout=30).text
        found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
        assert found, page[:400]
        return browser, found.group(1)

    def act(self, browser: requests.Session | None, context: str, action: str,
            body: dict[str, Any], *, csrf: str | None = None,
            origin: str | None = "", host: str | None = None) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        if origin is not None:
            headers["Origin"] = origin or self.url
        if host is not None:
            headers["Host"] = host
        send = browser or requests
        return send.post(f"{self.url}/dashboard/contexts/{context}/{action}",
                         json=body, headers=headers, timeout=30)

    def ledger(self) -> list[tuple[str, str, str | None, str | None, str]]:
        return [(e.actor, e.what, e.before, e.after, e.reason)
                for e in self.store.history("billing")]


@pytest.fixture
def dashboard(store: StateStore, tmp_path: Path) -> Iterator[Dashboard]:
    # MIGRATE_HOME is the state file's folder, so the router's gate and facts
    # read this test's system: contracts never verified, no databases.
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate.router", "--state", store.path,
         "--port", "0", "--log-level", "WARNING"],
        cwd=REPOSITORY, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "MIGRATE_ROUTER_TOKEN": TOKEN,
             "MIGRATE_HOME": str(tmp_path), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("router listening on"), line
        yield Dashboard(AdminClient.for_state(store.path).url, line.split()[-1],
                        store)
    finally:
        process.terminate()
        process.wait(10)


def test_without_a_session_the_page_is_the_login_form(dashboard: Dashboard) -> None:
    page = requests.get(f"{dashboard.url}/dashboard", timeout=10)
    data = requests.get(f"{dashboard.url}/dashboard/data", timeout=10)

    assert page.status_code == 200
    assert 'name="token"' in page.text
    assert "billing" not in page.text
    assert (data.status_code, data.json()["error"]) == (401, "unauthorized")


def test_a_wrong_token_opens_no_session(dashboard: Dashboard) -> None:
    answer = requests.post(f"{dashboard.url}/dashboard/login",
                           data={"token": "guessed"},
                           headers={"Origin": dashboard.url},
                           allow_redirects=False, timeout=10)

    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    assert 'data-code="unauthorized"' in answer.text


def test_the_session_cookie_is_http_only_and_strictly_same_site(
    dashboard: Dashboard,
) -> None:
    answer = requests.post(f"{dashboard.url}/dashboard/login", data={"token": TOKEN},
                           headers={"Origin": dashboard.url}, allow_redirects=False,
                           timeout=10)

    cookie = answer.headers["Set-Cookie"]
    assert answer.status_code == 303
    assert cookie.startswith("migrate_dashboard=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_a_login_posted_from_another_site_is_refused(dashboard: Dashboard) -> None:
    answer = requests.post(f"{dashboard.url}/dashboard/login", data={"token": TOKEN},
                           headers={"Origin": "http://evil.example"},
                           allow_redirects=False, timeout=10)

    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_the_page_shows_each_context_with_its_phase(dashboard: Dashboard) -> None:
    browser, _ = dashboard.login()

    data = browser.get(f"{dashboard.url}/dashboard/data", timeout=30).json()
    page = browser.get(f"{dashboard.url}/dashboard", timeout=30)

    (billing,) = data["contexts"]
    assert (billing["name"], billing["phase"], billing["writer"]) == (
        "billing", "extracted", "monolith",
    )
    assert {r["route"] for r in data["routes"]} >= {"GET /invoices/<int:invoice_id>"}
    assert '<ol class="phases" aria-label="phase extracted">' in page.text


def test_pages_forbid_framing_and_foreign_scripts(dashboard: Dashboard) -> None:
    browser, _ = dashboard.login()

    page = browser.get(f"{dashboard.url}/dashboard", timeout=30)

    assert page.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


def test_facts_that_cannot_be_read_say_unknown_and_why(
    dashboard: Dashboard, tmp_path: Path
) -> None:
    browser, _ = dashboard.login()

    data = browser.get(f"{dashboard.url}/dashboard/data", timeout=60).json()

    (billing,) = data["contexts"]
    assert billing["sync_lag"]["state"] == "unknown"
    assert "no database at" in billing["sync_lag"]["why"]
    assert billing["parity"]["state"] == "unknown"
    assert "migrate verify billing" in billing["parity"]["why"]
    assert data["queues"]["state"] == "unknown"
    assert not (tmp_path / "monolith.db").exists()


def test_an_action_without_a_session_is_refused_and_changes_nothing(
    dashboard: Dashboard,
) -> None:
    dashboard.store.set_weight("billing", 30, "ops", "canary")
    before = dashboard.ledger()

    answer = dashboard.act(None, "billing", "shift", {"weight": 10}, csrf="guess")

    assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized")
    assert dashboard.store.status()["billing"].read_weight == 30
    assert dashboard.ledger() == before


@pytest.mark.parametrize("csrf", [None, "", "not-the-session-s-token"])
def test_an_action_without_the_session_s_csrf_token_is_refused(
    dashboard: Dashboard, csrf: str | None,
) -> None:
    dashboard.store.set_weight("billing", 30, "ops", "canary")
    browser, _ = dashboard.login()
    before = dashboard.ledger()

    answer = dashboard.act(browser, "billing", "rollback", {}, csrf=csrf)

    assert (answer.status_code, answer.json()["error"]) == (403, "csrf_failed")
    assert dashboard.store.status()["billing"].read_weight == 30
    assert dashboard.ledger() == before


@pytest.mark.parametrize("origin", ["http://evil.example", None])
def test_an_action_from_another_origin_is_refused(
    dashboard: Dashboard, origin: str | None,
) -> None:
    dashboard.store.set_weight("billing", 30, "ops", "canary")
    browser, csrf = dashboard.login()

    answer = dashboard.act(browser, "billing", "rollback", {}, csrf=csrf,
                           origin=origin)

    assert (answer.status_code, answer.json()["error"]) == (403, "cross_origin")
    assert dashboard.store.status()["billing"].read_weight == 30


def test_a_request_naming_another_host_is_refused(dashboard: Dashboard) -> None:
    port = dashboard.url.rpartition(":")[2]

    answer = requests.get(f"{dashboard.url}/dashboard", timeout=10,
                          headers={"Host": f"rebound.example:{port}"})

    assert (answer.status_code, answer.json()["error"]) == (403, "wrong_host")


def test_lowering_a_weight_reaches_the_ledger_as_the_dashboard(
    dashboard: Dashboard,
) -> None:
    dashboard.store.set_weight("billing", 30, "ops", "canary")
    browser, csrf = dashboard.login()

    answer = dashboard.act(browser, "billing", "shift",
                           {"weight": "10", "reason": "fewer reads for now"},
                           csrf=csrf)

    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == (
        "billing: 10 % of reads now go to its service"
    )
    assert ("dashboard", "read_weight", "30", "10", "fewer reads for now") in (
        dashboard.ledger()
    )


def test_raising_a_weight_asks_the_contracts_gate_first(
    dashboard: Dashboard,
) -> None:
    browser, csrf = dashboard.login()
    before = dashboard.ledger()

    answer = dashboard.act(browser, "billing", "shift", {"weight": 25}, csrf=csrf)

    assert answer.status_code == 409
    assert answer.json()["error"] == "gate_refused"
    assert "billing's contracts do not allow it" in answer.json()["message"]
    assert dashboard.store.status()["billing"].read_weight == 0
    assert dashboard.ledger() == before


def test_the_admin_api_s_weight_call_asks_the_gate_too(
    dashboard: Dashboard,
) -> None:
    client = AdminClient.for_state(dashboard.store.path)

    with pytest.raises(AdminUnavailable, match="409: billing's contracts do not"):
        client.post("/admin/contexts/billing/weight",
                    {"weight": 25, "actor": "script", "reason": "canary"})

    assert dashboard.store.status()["billing"].read_weight == 0


def test_a_weight_that_is_not_a_percent_is_refused_by_name(
    dashboard: Dashboard,
) -> None:
    browser, csrf = dashboard.login()

    answer = dashboard.act(browser, "billing", "shift", {"weight": "lots"},
                           csrf=csrf)

    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_weight",
        "message": "weight 'lots' for billing: weights run 0-100",
    }


@pytest.mark.parametrize(("body", "message"), [
    ({"reason": ["x"]}, "field 'reason' ['x']: reason is text of at most 500 "
                        "characters"),
    ({"reason": "x" * 501}, f"field 'reason' {repr('x' * 501)[:60]}… (501 "
                            "characters): reason is text of at most 500 characters"),
    ({"reason": "why", "weigth": 10}, "field 'weigth' 10: not taken here; the "
                                      "fields are weight, reason"),
])
def test_a_body_the_page_would_not_send_is_a_bad_request_naming_the_field(
    dashboard: Dashboard, body: dict[str, Any], message: str
) -> None:
    browser, csrf = dashboard.login()
    before = dashboard.ledger()

    answer = dashboard.act(browser, "billing", "rollback", body, csrf=csrf)

    assert answer.status_code == 400
    assert answer.json() == {"error": "bad_request", "message": message}
    assert dashboard.ledger() == before


def test_rolling_back_sends_every_read_to_the_monolith(dashboard: Dashboard) -> None:
    dashboard.store.set_weight("billing", 30, "ops", "canary")
    browser, csrf = dashboard.login()

    answer = dashboard.act(browser, "billing", "rollback",
                           {"reason": "customers complain"}, csrf=csrf)

    assert answer.status_code == 200, answer.text
    assert dashboard.store.status()["billing"].read_weight == 0
    assert ("dashboard", "read_weight", "30", "0", "customers complain") in (
        dashboard.ledger()
    )


def test_pause_and_resume_reach_the_ledger(dashboard: Dashboard) -> None:
    dashboard.store.start_rollout("billing", (1, 5, 25), 300, "ops", "canary")
    browser, csrf = dashboard.login()

    paused = dashboard.act(browser, "billing", "pause", {"reason": "lunch"},
                           csrf=csrf)
    resumed = dashboard.act(browser, "billing", "resume", {"reason": "back"},
                            csrf=csrf)

    assert (paused.status_code, resumed.status_code) == (200, 200)
    assert [row for row in dashboard.ledger() if row[1] == "rollout"] == [
        ("dashboard", "rollout", "running", "paused", "lunch"),
        ("dashboard", "rollout", "paused", "running", "back"),
    ]


def test_pausing_without_a_rollout_says_so(dashboard: Dashboard) -> None:
    browser, csrf = dashboard.login()

    answer = dashboard.act(browser, "billing", "pause", {}, csrf=csrf)

    assert answer.status_code == 409
    assert "there is no rollout to pause" in answer.json()["message"]


def test_an_unknown_context_is_named(dashboard: Dashboard) -> None:
    browser, csrf = dashboard.login()

    answer = dashboard.act(browser, "biling", "rollback", {}, csrf=csrf)

    assert answer.status_code == 404
    assert answer.json()["error"] == "unknown_context"
    assert "known contexts: billing" in answer.json()["message"]


def test_logging_out_ends_the_session(dashboard: Dashboard) -> None:
    browser, csrf = dashboard.login()

    browser.post(f"{dashboard.url}/dashboard/logout", data={"csrf": csrf},
                 headers={"Origin": dashboard.url}, allow_redirects=False,
                 timeout=10)

    assert browser.get(f"{dashboard.url}/dashboard/data", timeout=10).status_code \
        == 401


def test_live_rates_count_the_requests_of_the_window(
    dashboard: Dashboard, monolith: EchoBackend,
) -> None:
    for n in range(7):
        assert requests.get(f"{dashboard.routed}/invoices/{n}", timeout=10).ok
    browser, _ = dashboard.login()

    data = browser.get(f"{dashboard.url}/dashboard/data", timeout=30).json()

    (seen,) = [b for b in data["backends"]
               if (b["context"], b["backend"]) == ("billing", "monolith")]
    assert (seen["requests"], seen["errors"], seen["error_rate"]) == (7, 0, 0.0)
    assert seen["p99_ms"] is not None


def test_a_rollout_s_step_counts_from_1_as_migrate_status_counts_it(
    dashboard: Dashboard,
) -> None:
    dashboard.store.start_rollout("billing", (1, 5, 25), 300, "ops", "canary")
    dashboard.store.update_rollout("billing", state="running", reason="at 5 %",
                                   step=1)
    browser, _ = dashboard.login()

    data = browser.get(f"{dashboard.url}/dashboard/data", timeout=30).json()
    live = browser.get(f"{dashboard.url}/dashboard/live", timeout=30).text

    (billing,) = [c for c in data["contexts"] if c["name"] == "billing"]
    assert (billing["rollout"]["step"], billing["rollout"]["steps"]) == (
        2, [1, 5, 25])
    assert "1 → 5 → 25 %, step 2 of 3" in live
