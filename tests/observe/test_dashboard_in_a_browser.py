"""The dashboard in a real browser against a real system: shift billing to
25 % from the page, see it in the table and the ledger; the same action
without the token, or from another site, is refused; the contracts gate
refuses on the page once billing's service verification is gone.

Real processes: `migrate up` with billing extracted and its contracts
verified; headless Chromium from Debian's package, driven by Playwright.
Screenshots are kept in the test's own folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from workspaces import system_environment, unavailable

from migrate.contracts.gate import refusal
from migrate.contracts.results import results_dir
from migrate.contracts.verify import verify as verify_contracts
from migrate.extract.run import extract
from migrate.kernel.sql import create_engine
from migrate.router.admin import admin_file
from migrate.router.state import LedgerEntry
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.settings import Settings
from migrate.system import System
from monolith.billing.tables import invoices
from monolith.host import Monolith

pytestmark = pytest.mark.e2e
CHROMIUM = os.environ.get("MIGRATE_CHROMIUM", "/usr/bin/chromium")
# Without these Debian's Chromium keeps trying to reach the network.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
PNG = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass
class Visit:
    url: str
    screenshots: Path
    without_token: dict[str, Any]
    from_another_site: str
    weight_after_refusals: int
    shift_outcome: str
    reads_cell: str
    phase_cell: str
    ledger_rows: list[str]
    ledger: list[LedgerEntry]
    backends: list[str]
    gate_outcome: str
    contracts_after_gate: str
    weight_after_gate: int


def _browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=CHROMIUM_FLAGS)


@pytest.fixture(scope="module")
def visit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Visit]:
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM} (Debian's package `chromium`)")
    sync_api = pytest.importorskip("playwright.sync_api")

    folder = tmp_path_factory.mktemp("dashboard")
    env = system_environment(folder)
    system = System(Settings.from_env(env))
    settings = system.settings
    screenshots = folder / "screenshots"
    screenshots.mkdir()
    try:
        settings.home.mkdir(parents=True)
        upgrade(settings.monolith_url)
        seed(Monolith(settings.monolith_url), synthetic.generate(20))
        system.up()
        extract(system, "billing")
        system.up()
        verified = verify_contracts(settings)
        assert verified.ok, verified.mismatches
        assert refusal("billing", settings) is None
        system.state.set_shadow("billing", 50, "migrate shadow", "compare first")

        found = subprocess.run(
            [sys.executable, "-m", "migrate.cli", "dashboard", "--json"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert found.returncode == 0, found.stderr
        url = json.loads(found.stdout)["url"]
        token = json.loads(admin_file(settings.state_path).read_text())["token"]

        with sync_api.sync_playwright() as playwright:
            browser = _browser(playwright)
            try:
                yield _steer(system, browser, url, token, screenshots)
            finally:
                browser.close()
    finally:
        system.down()


def _steer(system: System, browser: Any, url: str, token: str,
           screenshots: Path) -> Visit:
    state = system.state
    stranger = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = stranger.new_page()
    page.goto(url)
    page.screenshot(path=str(screenshots / "1-login.png"))
    without_token = page.evaluate("""async () => {
        const answer = await fetch("/dashboard/contexts/billing/shift", {
            method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({weight: 25, reason: "no token"})});
        return {status: answer.status, body: await answer.json()};
    }""")
    stranger.close()

    operator = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = operator.new_page()
    page.goto(url)
    page.fill("#token", token)
    page.click("form[action='/dashboard/login'] button[type=submit]")
    page.wait_for_selector("tr[data-context='billing']")
    page.screenshot(path=str(screenshots / "2-dashboard.png"), full_page=True)

    from_another_site = _forged_post(operator, url)
    weight_after_refusals = state.status()["billing"].read_weight

    steer = page.locator("form.steer-row[data-context='billing']")
    steer.locator("input[name=weight]").fill("25")
    steer.locator("input[name=reason]").fill("canary from the browser")
    steer.locator("button[value=shift]").click()
    reads = page.locator("tr[data-context='billing'] td.reads")
    page.wait_for_function(
        "() => document.querySelector(\"tr[data-context='billing'] td.reads\")"
        ".textContent.includes('25 %')"
    )
    shift_outcome = page.inner_text("#outcome")
    _read_invoices(system, 40)
    page.wait_for_selector("tr[data-backend='billing billing']", timeout=15000)
    page.screenshot(path=str(screenshots / "3-shifted.png"), full_page=True)
    reads_cell = reads.inner_text()
    phase_cell = page.inner_text("tr[data-context='billing'] td.phase li.now")
    ledger_rows = page.locator("#ledger tbody tr").all_inner_texts()
    backends = page.locator("#backends tbody tr").all_inner_texts()

    # billing's verification on its service goes missing: the gate says no.
    (results_dir(system.settings) / "billing@service.json").unlink()
    steer.locator("input[name=weight]").fill("50")
    steer.locator("input[name=reason]").fill("half the reads")
    steer.locator("button[value=shift]").click()
    page.wait_for_selector("#outcome.refused")
    gate_outcome = page.inner_text("#outcome")
    page.wait_for_function(
        "() => document.querySelector(\"tr[data-context='billing'] td.contracts\")"
        ".textContent.trim().startsWith('no')"
    )
    contracts_after_gate = page.inner_text("tr[data-context='billing'] td.contracts")
    page.screenshot(path=str(screenshots / "4-gate-refused.png"), full_page=True)
    operator.close()

    return Visit(
        url, screenshots, without_token, from_another_site, weight_after_refusals,
        shift_outcome, reads_cell, phase_cell, ledger_rows,
        list(state.history("billing")), backends, gate_outcome,
        contracts_after_gate, state.status()["billing"].read_weight,
    )


def _forged_post(context: Any, url: str) -> str:
    """What a page on another site gets when its form posts the shift to the
    dashboard, in the operator's own (logged-in) browser."""
    evil = context.new_page()
    form = (
        f'<form method="post" action="{url}/contexts/billing/shift" '
        'enctype="text/plain"><input name=\'{"weight": 25, "x": "\' '
        'value=\'"}\'></form><script>document.forms[0].submit()</script>'
    )
    evil.route("http://evil.test/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=form))
    evil.goto("http://evil.test/")
    evil.wait_for_url(f"{url}/contexts/billing/shift")
    text: str = evil.inner_text("body")
    evil.close()
    return text


def _read_invoices(system: System, count: int) -> None:
    engine = create_engine(system.settings.monolith_url)
    with engine.connect() as db:
        ids = [row[0] for row in db.execute(sa.select(invoices.c.invoice_id))]
    for invoice_id in (ids * count)[:count]:
        answer = requests.get(f"{system.settings.router_url}/invoices/{invoice_id}",
                              timeout=10)
        assert answer.status_code == 200, answer.text


def test_the_shift_without_the_token_is_refused_and_changes_nothing(
    visit: Visit,
) -> None:
    assert visit.without_token["status"] == 401
    assert visit.without_token["body"]["error"] == "unauthorized"
    assert visit.weight_after_refusals == 0


def test_a_forged_post_from_another_site_is_refused(visit: Visit) -> None:
    assert '"error": "unauthorized"' in visit.from_another_site
    assert visit.weight_after_refusals == 0


def test_the_page_shifts_billing_to_25_percent(visit: Visit) -> None:
    assert visit.shift_outcome == "billing: 25 % of reads now go to its service"
    assert visit.reads_cell.startswith("25 %")
    assert visit.phase_cell == "shifting reads"


def test_the_shift_is_in_the_ledger_as_the_dashboard_s(visit: Visit) -> None:
    shifts = [e for e in visit.ledger
              if (e.actor, e.what, e.after) == ("dashboard", "read_weight", "25")]
    phases = [e for e in visit.ledger
              if (e.actor, e.what) == ("dashboard", "phase")]

    assert [(e.before, e.reason) for e in shifts] == [("0", "canary from the browser")]
    assert [(e.before, e.after) for e in phases] == [("shadow", "shifting reads")]
    assert any("dashboard" in row and "read_weight" in row and "25" in row
               for row in visit.ledger_rows)


def test_the_page_shows_both_backends_answering_billing(visit: Visit) -> None:
    contexts = {row.split("\t")[0] + " " + row.split("\t")[1]
                for row in visit.backends}

    assert {"billing monolith", "billing billing"} <= contexts


def test_the_contracts_gate_refuses_on_the_page(visit: Visit) -> None:
    assert "billing's contracts do not allow it" in visit.gate_outcome
    assert "gate_refused" in visit.gate_outcome
    assert visit.weight_after_gate == 25
    assert "billing was never verified on the service" in visit.contracts_after_gate


def test_the_screenshots_are_kept_as_png_files(visit: Visit) -> None:
    names = sorted(p.name for p in visit.screenshots.iterdir())

    assert names == ["1-login.png", "2-dashboard.png", "3-shifted.png",
                     "4-gate-refused.png"]
    for path in visit.screenshots.iterdir():
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, path
