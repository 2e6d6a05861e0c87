"""Billing's repository and unit of work on SQLAlchemy Core."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.kernel import money
from migrate.kernel.uow import UnitOfWork
from monolith.billing.domain import Invoice, InvoiceLine, Payment
from monolith.billing.tables import invoice_lines, invoices, payments


class SqlInvoices:
    def __init__(self, connection: Connection):
        self._db = connection

    def get(self, invoice_id: int) -> Invoice | None:
        found = self._load(invoices.c.invoice_id == invoice_id)
        return found[0] if found else None

    def of_customer(self, customer_id: str) -> list[Invoice]:
        return self._load(invoices.c.customer_id == customer_id)

    def version_of(self, invoice_id: int) -> int | None:
        return self._db.execute(
            sa.select(invoices.c.version).where(invoices.c.invoice_id == invoice_id)
        ).scalar()

    def add(self, invoice: Invoice) -> None:
        self._db.execute(invoices.insert().values(**_invoice_row(invoice)))
        self._db.execute(
            invoice_lines.insert(),
            [
                _line_row(invoice.invoice_id, n, line)
                for n, line in enumerate(invoice.lines, 1)
            ],
        )
        if invoice.payments:
            self._db.execute(
                payments.insert(), [_payment_row(p) for p in invoice.payments]
            )

    def add_payment(self, invoice: Invoice, payment: Payment) -> None:
        self._db.execute(payments.insert().values(**_payment_row(payment)))
        updated = self._db.execute(
            invoices.update()
            .where(
                invoices.c.invoice_id == invoice.invoice_id,
                invoices.c.version == invoice.version - 1,
            )
            .values(
                paid_cents=money.to_cents(invoice.paid),
                status=invoice.status,
                version=invoice.version,
            )
        )
        if updated.rowcount != 1:
            raise RuntimeError(
                f"invoice {invoice.invoice_id} changed underneath a payment"
            )

    def replace(self, invoice: Invoice) -> None:
        key = invoice.invoice_id
        self._db.execute(payments.delete().where(payments.c.invoice_id == key))
        self._db.execute(
            invoice_lines.delete().where(invoice_lines.c.invoice_id == key)
        )
        self._db.execute(invoices.delete().where(invoices.c.invoice_id == key))
        self.add(invoice)

    def _load(self, where: sa.ColumnElement[bool]) -> list[Invoice]:
        heads = self._db.execute(
            sa.select(invoices).where(where).order_by(invoices.c.invoice_id)
        ).all()
        if not heads:
            return []

        ids = [h.invoice_id for h in heads]
        lines: dict[int, list[InvoiceLine]] = {i: [] for i in ids}
        for row in self._db.execute(
            sa.select(invoice_lines)
            .where(invoice_lines.c.invoice_id.in_(ids))
            .order_by(invoice_lines.c.invoice_id, invoice_lines.c.line_no)
        ):
            lines[row.invoice_id].append(
                InvoiceLine(
                    product_id=row.product_id,
                    unit_price=money.from_cents(row.unit_price_cents),
                    quantity=row.quantity,
                    discount=Decimal(row.discount_hundredths) / 100,
                )
            )
        paid: dict[int, list[Payment]] = {i: [] for i in ids}
        for row in self._db.execute(
            sa.select(payments)
            .where(payments.c.invoice_id.in_(ids))
            .order_by(payments.c.received_at, payments.c.payment_id)
        ):
            paid[row.invoice_id].append(
                Payment(
                    row.payment_id,
                    row.invoice_id,
                    money.from_cents(row.amount_cents),
                    row.received_at,
                )
            )
        return [
            Invoice(
                invoice_id=h.invoice_id,
                customer_id=h.customer_id,
                issued_at=h.issued_at,
                freight=money.from_cents(h.freight_cents),
                lines=lines[h.invoice_id],
                payments=paid[h.invoice_id],
                version=h.version,
            )
            for h in heads
        ]


def _invoice_row(invoice: Invoice) -> dict[str, object]:
    return {
        "invoice_id": invoice.invoice_id,
        "customer_id": invoice.customer_id,
        "issued_at": invoice.issued_at,
        "freight_cents": money.to_cents(invoice.freight),
        "total_cents": money.to_cents(invoice.total),
        "paid_cents": money.to_cents(invoice.paid),
        "status": invoice.status,
        "version": invoice.version,
    }


def _line_row(invoice_id: int, line_no: int, line: InvoiceLine) -> dict[str, object]:
    return {
        "invoice_id": invoice_id,
        "line_no": line_no,
        "product_id": line.product_id,
        "unit_price_cents": money.to_cents(line.unit_price),
        "quantity": line.quantity,
        "discount_hundredths": int(line.discount * 100),
        "amount_cents": money.to_cents(line.amount),
    }


def _payment_row(payment: Payment) -> dict[str, object]:
    return {
        "payment_id": payment.payment_id,
        "invoice_id": payment.invoice_id,
        "amount_cents": money.to_cents(payment.amount),
        "received_at": payment.received_at,
    }


class BillingUnitOfWork(UnitOfWork):
    context = "billing"

    def __enter__(self) -> BillingUnitOfWork:
        super().__enter__()
        self.invoices = SqlInvoices(self.connection)
        return self
