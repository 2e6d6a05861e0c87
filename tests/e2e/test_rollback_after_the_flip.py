"""`migrate rollback` after the write flip loses nothing the service accepted."""

from __future__ import annotations

import time

import pytest
import requests
import sqlalchemy as sa

from migrate.extract.run import extract
from migrate.kernel.sql import create_engine
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.sync.flip import move_writes
from migrate.system import System
from monolith.billing.tables import invoices, payments
from monolith.host import Monolith

pytestmark = pytest.mark.e2e


def _place_and_pay(
    router: str, customer: str, count: int
) -> tuple[list[int], list[str]]:
    orders, paid = [], []
    for n in range(count):
        order = requests.post(
            f"{router}/orders",
            json={"customer_id": customer, "lines": [{"product_id": 1, "quantity": 2}]},
            timeout=30,
        )
        assert order.status_code == 201, order.text
        orders.append(order.json()["order_id"])
        payment = requests.post(
            f"{router}/invoices/{1 + n}/payments", json={"amount": "0.01"}, timeout=30
        )
        assert payment.status_code == 201, payment.text
        paid.append(payment.json()["payment_id"])
    return orders, paid


def _rows(url: str, column: sa.Column) -> set:
    with create_engine(url).connect() as db:
        return {r[0] for r in db.execute(sa.select(column))}


def _eventually(check, timeout: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.3)
    return check()


def test_a_rollback_keeps_every_invoice_and_payment_the_service_accepted(
    system: System,
) -> None:
    settings = system.settings
    settings.home.mkdir(parents=True)
    upgrade(settings.monolith_url)
    seed(Monolith(settings.monolith_url), synthetic.generate(30))
    customer = synthetic.generate(30).orders[0].customer_id
    system.up()
    extract(system, "billing")
    system.up()
    system.state.set_weight("billing", 100, "test", "all reads")
    move_writes(system, "billing")
    service_orders, service_payments = _place_and_pay(settings.router_url, customer, 8)
    assert _eventually(
        lambda: (
            set(service_orders)
            <= _rows(settings.service_url("billing"), invoices.c.invoice_id)
        )
    )

    move_writes(system, "billing", back=True)
    system.state.set_weight("billing", 0, "test", "rollback")
    later_orders, later_payments = _place_and_pay(settings.router_url, customer, 4)

    every_order = set(service_orders + later_orders)
    assert _eventually(
        lambda: every_order <= _rows(settings.monolith_url, invoices.c.invoice_id)
    )
    assert set(service_payments + later_payments) <= _rows(
        settings.monolith_url, payments.c.payment_id
    )
    assert system.state.status()["billing"].writer == "monolith"
    with create_engine(settings.service_url("billing")).connect() as db:
        issued_by_service = db.execute(
            sa.text(
                "SELECT count(*) FROM billing_outbox WHERE event_type = 'InvoiceIssued'"
            )
        ).scalar()
    assert issued_by_service == len(service_orders)
