"""A replica follows its writer: once per event id, newest version wins."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from migrate.extract.schema import service_metadata
from migrate.hosts.service import ServiceHost
from migrate.kernel.events import Envelope
from migrate.kernel.sql import REPLICA, create_engine
from migrate.kernel.uow import queue_tables, set_role
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.sync.backfill import backfill, verify
from monolith.billing.handlers import RecordPayment, record_payment
from monolith.billing.tables import invoices
from monolith.host import Monolith


@pytest.fixture
def monolith(sqlite_url: str) -> Monolith:
    upgrade(sqlite_url)
    host = Monolith(sqlite_url)
    seed(host, synthetic.generate(40))
    return host


@pytest.fixture
def service(tmp_path) -> ServiceHost:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    engine = create_engine(url)
    for metadata in service_metadata("billing"):
        metadata.create_all(engine)
    with engine.begin() as db:
        set_role(db, "billing", REPLICA)
    return ServiceHost("billing", url)


def _events_after(host: Monolith, position: int) -> list[Envelope]:
    outbox, _ = queue_tables("billing")
    with host.engine.connect() as db:
        rows = db.execute(
            sa.select(outbox.c.payload)
            .where(outbox.c.position > position)
            .order_by(outbox.c.position)
        )
        return [Envelope.from_json(r.payload) for r in rows]


def _pay(host: Monolith, invoice_id: int, payment_id: str) -> None:
    command = RecordPayment(invoice_id, payment_id, Decimal("1.00"))
    record_payment(command, host.unit_of_work("billing"))


def test_a_republished_event_changes_nothing_the_second_time(
    monolith: Monolith, service: ServiceHost
) -> None:
    position = backfill(
        monolith.manifest.context("billing"), monolith.engine, service.engine
    ).source_position
    _pay(monolith, 1, "p-1")
    (event,) = _events_after(monolith, position)

    first = service.follow(event)
    again = service.follow(event)

    assert (first, again) == (True, False)


def test_an_older_version_arriving_late_does_not_undo_a_newer_one(
    monolith: Monolith, service: ServiceHost
) -> None:
    position = backfill(
        monolith.manifest.context("billing"), monolith.engine, service.engine
    ).source_position
    _pay(monolith, 1, "p-1")
    _pay(monolith, 1, "p-2")
    older, newer = _events_after(monolith, position)

    service.follow(newer)
    service.follow(older)

    with service.engine.connect() as db:
        paid = db.execute(
            sa.select(invoices.c.paid_cents).where(invoices.c.invoice_id == 1)
        ).scalar()
    assert paid == 200


def test_a_write_during_the_backfill_is_neither_lost_nor_applied_out_of_order(
    monolith: Monolith, service: ServiceHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("migrate.sync.backfill.CHUNK", 10)
    context = monolith.manifest.context("billing")
    paid_during: list[bool] = []

    def pay_once_invoices_are_half_copied(table: str, done: int, total: int) -> None:
        # Invoice 1 is copied already; invoice 40 is not yet.
        if table == "invoices" and not paid_during:
            _pay(monolith, 1, "during-1")
            _pay(monolith, 40, "during-40")
            paid_during.append(True)

    report = backfill(
        context, monolith.engine, service.engine, pay_once_invoices_are_half_copied
    )
    for event in _events_after(monolith, report.source_position):
        service.follow(event)

    assert paid_during
    assert verify(context, monolith.engine, service.engine).differences == []
