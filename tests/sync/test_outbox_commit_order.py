"""Outbox positions commit in order, so a relay never publishes past an open one."""

from __future__ import annotations

import threading
from decimal import Decimal

import sqlalchemy as sa

from migrate.kernel.uow import queue_tables
from migrate.schema import upgrade
from monolith.billing.domain import Invoice, InvoiceLine
from monolith.billing.events import InvoiceIssued
from monolith.host import Monolith


def _issue(
    host: Monolith,
    invoice_id: int,
    paused: threading.Event | None = None,
    holding: threading.Event | None = None,
) -> None:
    uow = host.unit_of_work("billing")
    with uow:
        if paused is not None:
            # Stop between the outbox insert and COMMIT, as a slow commit would.
            def wait(_connection: object) -> None:
                holding.set()  # type: ignore[union-attr]
                paused.wait(10)

            sa.event.listen(uow.connection, "commit", wait)
        line = InvoiceLine(1, Decimal("1.00"), 1, Decimal("0"))
        invoice = Invoice(invoice_id, "ALFKI", "now", Decimal("0.00"), [line])
        uow.record(InvoiceIssued.of(invoice))
        uow.commit()


def _positions(host: Monolith) -> list[tuple[int, str]]:
    outbox, _ = queue_tables("billing")
    with host.engine.connect() as db:
        return [
            (r.position, r.aggregate_id)
            for r in db.execute(
                sa.select(outbox.c.position, outbox.c.aggregate_id).order_by(
                    outbox.c.position
                )
            )
        ]


def test_a_later_transaction_waits_to_write_the_outbox_until_the_earlier_commits(
    postgres_url: str,
) -> None:
    upgrade(postgres_url)
    host = Monolith(postgres_url)
    release, holding = threading.Event(), threading.Event()
    first = threading.Thread(target=_issue, args=(host, 1, release, holding))
    first.start()
    holding.wait(10)

    second = threading.Thread(target=_issue, args=(host, 2))
    second.start()
    second.join(0.5)
    visible_while_first_open = _positions(host)
    blocked = second.is_alive()
    release.set()
    first.join(10)
    second.join(10)

    assert blocked
    assert visible_while_first_open == []
    assert [aggregate for _, aggregate in _positions(host)] == ["1", "2"]
