"""Billing's service with tables shaped otherwise than the monolith's.

The monolith keeps `invoices`, `invoice_lines` and `payments` with amounts
in integer cents. This service keeps `bills`, `bill_lines` and
`settlements`: renamed columns, amounts as decimal text, a currency the
monolith never stored. Its repository speaks billing's ports, so the
context's own handlers and replica run on it unchanged; the manifest's
`copy` blocks (see `manifest_text`) say how the rows move.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.kernel import money
from migrate.kernel.sql import inbox_table, outbox_table
from migrate.kernel.uow import UnitOfWork
from migrate.manifest import DEFAULT_PATH
from monolith.billing.domain import Invoice, InvoiceLine, Payment

metadata = sa.MetaData()

bills = sa.Table(
    "bills",
    metadata,
    sa.Column("bill_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer", sa.String(5), nullable=False),
    sa.Column("issued", sa.String(40), nullable=False),
    sa.Column("freight", sa.String(20), nullable=False),
    sa.Column("total", sa.String(20), nullable=False),
    sa.Column("paid", sa.String(20), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

bill_lines = sa.Table(
    "bill_lines",
    metadata,
    sa.Column("bill_no", sa.Integer, sa.ForeignKey("bills.bill_no"), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.String(20), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("discount_hundredths", sa.Integer, nullable=False),
    sa.Column("amount", sa.String(20), nullable=False),
)

settlements = sa.Table(
    "settlements",
    metadata,
    sa.Column("settlement_id", sa.String(36), primary_key=True),
    sa.Column("bill_no", sa.Integer, sa.ForeignKey("bills.bill_no"), nullable=False),
    sa.Column("amount", sa.String(20), nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    # The service notes when it learnt of a settlement; the monolith did not.
    sa.Column("noted_at", sa.String(40), nullable=True),
)

outbox = outbox_table(metadata, "billing")
inbox = inbox_table(metadata, "billing")

CURRENCY = "EUR"

# What the manifest adds to billing for this service. Columns not listed
# keep their names (version, line_no, product_id, ...).
COPY_BLOCKS = """
[contexts.billing.copy.bills]
from = "invoices"
columns.bill_no = "invoice_id"
columns.customer = "customer_id"
columns.issued = "issued_at"
columns.freight = { from = "freight_cents", convert = "cents_to_decimal_text" }
columns.total = { from = "total_cents", convert = "cents_to_decimal_text" }
columns.paid = { from = "paid_cents", convert = "cents_to_decimal_text" }
columns.state = "status"
columns.currency = { constant = "EUR" }

[contexts.billing.copy.bill_lines]
from = "invoice_lines"
columns.bill_no = "invoice_id"
columns.unit_price = { from = "unit_price_cents", convert = "cents_to_decimal_text" }
columns.amount = { from = "amount_cents", convert = "cents_to_decimal_text" }

[contexts.billing.copy.settlements]
from = "payments"
columns.settlement_id = "payment_id"
columns.bill_no = "invoice_id"
columns.amount = { from = "amount_cents", convert = "cents_to_decimal_text" }
"""


def manifest_text(copy_blocks: str = COPY_BLOCKS) -> str:
    """The reference manifest, with billing's service shaped as here."""
    text = DEFAULT_PATH.read_text()
    header = "[contexts.billing]\n"
    keys = (
        'service_metadata = "reshaped_billing:metadata"\n'
        'service_unit_of_work = "reshaped_billing:ReshapedBillingUnitOfWork"\n'
    )
    assert header in text
    return text.replace(header, header + keys) + copy_blocks


def write_manifest(folder: Path, copy_blocks: str = COPY_BLOCKS) -> Path:
    path = folder / "contexts.toml"
    path.write_text(manifest_text(copy_blocks))
    return path


def _text(cents: Decimal) -> str:
    return money.text(cents)


class SqlBills:
    """Billing's `Invoices` port over the service's own tables."""

    def __init__(self, connection: Connection):
        self._db = connection

    def get(self, invoice_id: int) -> Invoice | None:
        found = self._load(bills.c.bill_no == invoice_id)
        return found[0] if found else None

    def of_customer(self, customer_id: str) -> list[Invoice]:
        return self._load(bills.c.customer == customer_id)

    def version_of(self, invoice_id: int) -> int | None:
        return self._db.execute(
            sa.select(bills.c.version).where(bills.c.bill_no == invoice_id)
        ).scalar()

    def add(self, invoice: Invoice) -> None:
        self._db.execute(bills.insert().values(**_bill_row(invoice)))
        self._db.execute(
            bill_lines.insert(),
            [
                {
                    "bill_no": invoice.invoice_id,
                    "line_no": n,
                    "product_id": line.product_id,
                    "unit_price": _text(line.unit_price),
                    "quantity": line.quantity,
                    "discount_hundredths": int(line.discount * 100),
                    "amount": _text(line.amount),
                }
                for n, line in enumerate(invoice.lines, 1)
            ],
        )
        for payment in invoice.payments:
            self._db.execute(settlements.insert().values(**_settlement_row(payment)))

    def add_payment(self, invoice: Invoice, payment: Payment) -> None:
        self._db.execute(settlements.insert().values(**_settlement_row(payment)))
        self._db.execute(
            bills.update()
            .where(bills.c.bill_no == invoice.invoice_id)
            .values(
                paid=_text(invoice.paid),
                state=invoice.status,
                version=invoice.version,
            )
        )

    def replace(self, invoice: Invoice) -> None:
        key = invoice.invoice_id
        self._db.execute(settlements.delete().where(settlements.c.bill_no == key))
        self._db.execute(bill_lines.delete().where(bill_lines.c.bill_no == key))
        self._db.execute(bills.delete().where(bills.c.bill_no == key))
        self.add(invoice)

    def _load(self, where: sa.ColumnElement[bool]) -> list[Invoice]:
        heads = self._db.execute(
            sa.select(bills).where(where).order_by(bills.c.bill_no)
        ).all()
        found = []
        for head in heads:
            lines = [
                InvoiceLine(
                    row.product_id,
                    Decimal(row.unit_price),
                    row.quantity,
                    Decimal(row.discount_hundredths) / 100,
                )
                for row in self._db.execute(
                    sa.select(bill_lines)
                    .where(bill_lines.c.bill_no == head.bill_no)
                    .order_by(bill_lines.c.line_no)
                )
            ]
            paid = [
                Payment(
                    row.settlement_id, row.bill_no, Decimal(row.amount), row.received_at
                )
                for row in self._db.execute(
                    sa.select(settlements)
                    .where(settlements.c.bill_no == head.bill_no)
                    .order_by(settlements.c.received_at, settlements.c.settlement_id)
                )
            ]
            found.append(
                Invoice(
                    invoice_id=head.bill_no,
                    customer_id=head.customer,
                    issued_at=head.issued,
                    freight=Decimal(head.freight),
                    lines=lines,
                    payments=paid,
                    version=head.version,
                )
            )
        return found


def _bill_row(invoice: Invoice) -> dict[str, object]:
    return {
        "bill_no": invoice.invoice_id,
        "customer": invoice.customer_id,
        "issued": invoice.issued_at,
        "freight": _text(invoice.freight),
        "total": _text(invoice.total),
        "paid": _text(invoice.paid),
        "state": invoice.status,
        "currency": CURRENCY,
        "version": invoice.version,
    }


def _settlement_row(payment: Payment) -> dict[str, object]:
    return {
        "settlement_id": payment.payment_id,
        "bill_no": payment.invoice_id,
        "amount": _text(payment.amount),
        "received_at": payment.received_at,
    }


class ReshapedBillingUnitOfWork(UnitOfWork):
    context = "billing"

    def __enter__(self) -> ReshapedBillingUnitOfWork:
        super().__enter__()
        self.invoices = SqlBills(self.connection)
        return self
