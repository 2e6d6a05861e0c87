"""The spine, end to end on the Northwind dump, with real processes.

One story runs once for the module (seed, up, extract, shift reads 0 -> 50
-> 100 %, move writes, keep placing orders) and each test asserts one fact
of it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from workspaces import postgres_databases, system_environment

from migrate.contracts.gate import refusal
from migrate.contracts.verify import verify as verify_contracts
from migrate.demo import Traffic, _reference_data
from migrate.extract.run import ExtractReport, extract
from migrate.kernel.sql import create_engine
from migrate.kernel.uow import queue_tables
from migrate.schema import upgrade
from migrate.seed.load import seed
from migrate.seed.northwind import read_dump
from migrate.settings import Settings
from migrate.sync.flip import move_writes
from migrate.system import System
from monolith.billing.tables import invoices
from monolith.host import Monolith

pytestmark = pytest.mark.e2e
NORTHWIND_LAST_ORDER = 11077
SECONDS = float(os.environ.get("MIGRATE_E2E_SECONDS", "3"))


@dataclasses.dataclass
class Story:
    system: System
    seeded_invoices: int
    extraction: ExtractReport
    backends_at_50: Counter
    traffic: Traffic
    placed_after_flip: list[int]
    pids: dict[str, int]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def story(
    request: pytest.FixtureRequest,
    northwind_dump: Path,  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory,
):
    """The story on SQLite files, then with both databases on PostgreSQL."""
    home = tmp_path_factory.mktemp("story")
    env = system_environment(home)
    with postgres_databases(2 if request.param == "postgres" else 0) as urls:
        if urls:
            env["MONOLITH_DATABASE_URL"], env["BILLING_DATABASE_URL"] = urls
        yield from _tell(env, northwind_dump)


def _tell(env: dict[str, str], northwind_dump: Path):  # type: ignore[no-untyped-def]
    system = System(Settings.from_env(env))
    settings = system.settings
    try:
        settings.home.mkdir(parents=True)
        upgrade(settings.monolith_url)
        report = seed(Monolith(settings.monolith_url), read_dump(northwind_dump))
        system.up()
        extraction = extract(system, "billing")
        system.up()
        verified = verify_contracts(settings)
        assert verified.ok, verified.mismatches
        assert refusal("billing", settings) is None

        traffic = Traffic(
            settings.router_url, *_reference_data(create_engine(settings.monolith_url))
        )
        traffic.start()
        system.state.set_weight("billing", 50, "test", "half the reads")
        backends_at_50 = _reads_by_backend(settings.router_url, range(10248, 10448))
        time.sleep(SECONDS)
        system.state.set_weight("billing", 100, "test", "all the reads")
        time.sleep(SECONDS)
        move_writes(system, "billing")
        flipped_at = len(traffic.placed)
        time.sleep(SECONDS)
        traffic.stop()
        placed_after = traffic.placed[flipped_at:]
        _wait_for_invoices(system, traffic.placed)
        yield Story(
            system,
            report.invoices,
            extraction,
            backends_at_50,
            traffic,
            placed_after,
            system.supervisor.running(),
        )
    finally:
        system.down()


def _reads_by_backend(router: str, invoice_ids: range) -> Counter:
    seen: Counter = Counter()
    for invoice_id in invoice_ids:
        reply = requests.get(f"{router}/invoices/{invoice_id}", timeout=10)
        reply.raise_for_status()
        seen[reply.headers["X-Migrate-Backend"]] += 1
    return seen


def _invoice_ids(engine: sa.Engine, wanted: list[int]) -> list[int]:
    with engine.connect() as db:
        return [
            r[0]
            for r in db.execute(
                sa.select(invoices.c.invoice_id).where(
                    invoices.c.invoice_id.in_(wanted)
                )
            )
        ]


def _wait_for_invoices(system: System, orders: list[int], timeout: float = 60) -> None:
    engines = [
        create_engine(system.settings.monolith_url),
        create_engine(system.settings.service_url("billing")),
    ]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(_invoice_ids(e, orders)) == len(orders) for e in engines) and len(
            list(system.settings.mail_dir.glob("*.eml"))
        ) >= len(orders):
            return
        time.sleep(0.5)


def test_seeding_issues_the_830_historical_invoices(story: Story) -> None:
    assert story.seeded_invoices == 830


def test_the_service_copy_equals_the_monolith_to_the_cent(story: Story) -> None:
    parity = story.extraction.parity

    assert parity.counts["invoices"] == (830, 830)
    assert parity.differences == []
    assert parity.totals["invoices.total_cents"][0] > 0


def test_both_backends_serve_reads_at_fifty_percent(story: Story) -> None:
    assert story.backends_at_50["monolith"] > 50
    assert story.backends_at_50["billing"] > 50


def test_no_request_fails_through_every_shift_and_the_flip(story: Story) -> None:
    assert story.traffic.failures == []
    assert len(story.placed_after_flip) > 0


def test_orders_after_the_flip_are_invoiced_once_by_the_service(story: Story) -> None:
    settings = story.system.settings
    service_outbox, _ = queue_tables("billing")
    wanted = [str(o) for o in story.placed_after_flip]
    issued: dict[str, Counter] = {}
    for side, url in (
        ("service", settings.service_url("billing")),
        ("monolith", settings.monolith_url),
    ):
        with create_engine(url).connect() as db:
            issued[side] = Counter(
                r[0]
                for r in db.execute(
                    sa.select(service_outbox.c.aggregate_id).where(
                        service_outbox.c.event_type == "InvoiceIssued",
                        service_outbox.c.aggregate_id.in_(wanted),
                    )
                )
            )

    assert set(issued["service"]) == set(wanted)
    assert max(issued["service"].values()) == 1
    assert not issued["monolith"]


def test_the_monolith_replica_holds_every_invoice_the_service_issued(
    story: Story,
) -> None:
    monolith = create_engine(story.system.settings.monolith_url)

    assert sorted(_invoice_ids(monolith, story.placed_after_flip)) == sorted(
        story.placed_after_flip
    )


def test_one_email_per_new_invoice_and_none_for_history(story: Story) -> None:
    mailed = sorted(
        int(p.stem.split("-")[1]) for p in story.system.settings.mail_dir.glob("*.eml")
    )

    assert mailed == sorted(story.traffic.placed)
    assert all(invoice > NORTHWIND_LAST_ORDER for invoice in mailed)


def test_down_leaves_no_process_behind(story: Story) -> None:
    story.system.down()

    assert story.pids
    for pid in story.pids.values():
        assert (
            not Path(f"/proc/{pid}").exists()
            or Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
        )
