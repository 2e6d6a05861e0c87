"""The monolith standing alone runs the side effects itself, after commit.

The same handlers the Lambda functions run, behind the contexts' outlets
(files under MAIL_DIR here), handed the events each transaction committed,
and claimed by event id in the context's inbox.
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from migrate.messaging.emulator import free_port
from migrate.processes import ProcessSpec, Supervisor
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.errors import SeedError
from migrate.seed.load import seed
from monolith.__main__ import CATCH_UP_SECONDS
from monolith.billing.domain import Invoice, InvoiceLine
from monolith.billing.events import InvoiceIssued
from monolith.billing.tables import inbox as billing_inbox
from monolith.catalog.domain import Category, Product, Supplier
from monolith.catalog.handlers import add_to_catalog
from monolith.customers.domain import Customer
from monolith.customers.handlers import register_customers
from monolith.host import Monolith
from monolith.web import create_app

ORDER = {"customer_id": "ALFKI", "lines": [{"product_id": 1, "quantity": 3}]}


@pytest.fixture
def mail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "mail"
    monkeypatch.setenv("MAIL_DIR", str(folder))
    monkeypatch.delenv("OUTPUT_BUCKET", raising=False)
    return folder


@pytest.fixture
def stocked(database_url: str) -> str:
    """A database with one product and one customer, through their handlers."""
    upgrade(database_url)
    host = Monolith(database_url)
    add_to_catalog(host.unit_of_work("catalog"), [Category(1, "Beverages")],
                   [Supplier(1, "Exotic Liquids")],
                   [Product(1, "Chai", Decimal("18.00"), 1, 1)])
    register_customers(host.unit_of_work("customers"), [Customer("ALFKI", "Alfreds")])
    return database_url


def _claims(host: Monolith) -> list[tuple[str, str]]:
    with host.engine.connect() as db:
        rows = db.execute(sa.select(billing_inbox.c.consumer, billing_inbox.c.event_id)
                          .order_by(billing_inbox.c.consumer)).all()
    return [(row.consumer, row.event_id) for row in rows]


def test_a_committed_order_sends_one_invoice_email_in_process(
    stocked: str, mail: Path
) -> None:
    host = Monolith(stocked, side_effects=True)

    placed = create_app(host).test_client().post("/orders", json=ORDER)

    order_id = placed.json["order_id"]
    assert placed.status_code == 201
    assert [p.name for p in mail.glob("*.eml")] == [f"invoice-{order_id}.eml"]
    assert "Subject: Northwind invoice" in (
        mail / f"invoice-{order_id}.eml").read_text()
    assert (mail / "documents" / f"invoice-{order_id}.pdf").exists()
    claimed = {consumer for consumer, _ in _claims(host)}
    assert {"billing.invoice_email", "billing.invoice_pdf"} <= claimed


def test_a_partial_payment_sends_its_reminder_in_process(
    stocked: str, mail: Path
) -> None:
    client = create_app(Monolith(stocked, side_effects=True)).test_client()
    order_id = client.post("/orders", json=ORDER).json["order_id"]

    paid = client.post(f"/invoices/{order_id}/payments",
                       json={"payment_id": "p-1", "amount": "10.00"})

    assert paid.status_code == 201
    [reminder] = (mail / "reminders").iterdir()
    assert "44.00 still open" in reminder.read_text()


def test_a_transaction_that_rolls_back_sends_nothing(stocked: str, mail: Path) -> None:
    host = Monolith(stocked, side_effects=True)
    invoice = Invoice(invoice_id=77, customer_id="ALFKI",
                      issued_at="2026-12-03T10:00:00+00:00", freight=Decimal("0"),
                      lines=[InvoiceLine(1, Decimal("18.00"), 1, Decimal("0"))])
    uow = host.unit_of_work("billing")

    with pytest.raises(RuntimeError), uow:
        uow.invoices.add(invoice)
        uow.record(InvoiceIssued.of(invoice))
        raise RuntimeError("the card was declined before the commit")

    assert host.catch_up() == 0
    assert not mail.exists()
    assert _claims(host) == []


def test_a_dispatch_interrupted_before_its_side_effects_is_caught_up_once(
    stocked: str, mail: Path
) -> None:
    # A host that stops right after the commit: the events are stored, and
    # no side effect ran.
    crashed = Monolith(stocked)
    order_id = create_app(crashed).test_client().post(
        "/orders", json=ORDER).json["order_id"]
    assert not mail.exists()
    restarted = Monolith(stocked, side_effects=True)

    caught_up = restarted.catch_up()
    again = restarted.catch_up()

    assert caught_up == 2 and again == 0
    assert [p.name for p in mail.glob("*.eml")] == [f"invoice-{order_id}.eml"]
    assert sorted(c for c, _ in _claims(restarted) if c.startswith(
        "billing.invoice_")) == ["billing.invoice_email", "billing.invoice_pdf"]


def test_a_side_effect_that_failed_is_retried_by_catch_up_and_sends_once(
    stocked: str, mail: Path
) -> None:
    # The mail folder cannot be created: the e-mail fails after the commit.
    mail.write_text("not a folder")
    host = Monolith(stocked, side_effects=True)
    order_id = create_app(host).test_client().post(
        "/orders", json=ORDER).json["order_id"]
    assert "billing.invoice_email" not in {c for c, _ in _claims(host)}
    mail.unlink()

    caught_up = host.catch_up()

    assert caught_up == 2
    assert [p.name for p in mail.glob("*.eml")] == [f"invoice-{order_id}.eml"]
    assert host.catch_up() == 0


def test_without_side_effects_the_host_sends_nothing(stocked: str, mail: Path) -> None:
    host = Monolith(stocked)

    create_app(host).test_client().post("/orders", json=ORDER)

    assert host.catch_up() == 0
    assert not mail.exists()


def test_seeded_history_is_not_emailed_by_a_standalone_monolith(
    sqlite_url: str, mail: Path
) -> None:
    upgrade(sqlite_url)
    seed(Monolith(sqlite_url), synthetic.generate(5))

    delivered = Monolith(sqlite_url, side_effects=True).catch_up()

    assert delivered == 0
    assert not mail.exists()


def test_seeding_through_a_host_that_runs_side_effects_is_refused(
    sqlite_url: str, mail: Path
) -> None:
    upgrade(sqlite_url)

    with pytest.raises(SeedError, match="runs no side effects"):
        seed(Monolith(sqlite_url, side_effects=True), synthetic.generate(5))

    assert not mail.exists()


@pytest.mark.parametrize("flags, mailed", [([], True),
                                            (["--side-effects", "functions"], False)],
                         ids=["standing-alone", "beside-its-functions"])
def test_python_m_monolith_sends_the_email_itself_unless_told_otherwise(
    stocked: str, tmp_path: Path, flags: list[str], mailed: bool,
) -> None:
    mail = tmp_path / "sent"
    supervisor = Supervisor(tmp_path / "run", tmp_path / "logs")
    port = free_port()
    try:
        supervisor.start(ProcessSpec(
            "monolith", [sys.executable, "-m", "monolith", "--database", stocked,
                         "--port", str(port), *flags],
            env={"MAIL_DIR": str(mail)},
            ready_url=f"http://127.0.0.1:{port}/_migrate/health"))

        order_id = requests.post(f"http://127.0.0.1:{port}/orders", json=ORDER,
                                 timeout=10).json()["order_id"]
        # Past one round of the host's catch-up, which would send it too.
        time.sleep(CATCH_UP_SECONDS + 1)
    finally:
        supervisor.stop_all(["monolith"])

    sent = [p.name for p in mail.glob("*.eml")]
    assert sent == ([f"invoice-{order_id}.eml"] if mailed else [])
