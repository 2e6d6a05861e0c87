"""The tables billing owns. Amounts are integer cents; discounts hundredths."""

import sqlalchemy as sa

from migrate.kernel.sql import inbox_table, outbox_table

metadata = sa.MetaData()

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("invoice_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.String(5), nullable=False, index=True),
    sa.Column("issued_at", sa.String(40), nullable=False),
    sa.Column("freight_cents", sa.BigInteger, nullable=False),
    sa.Column("total_cents", sa.BigInteger, nullable=False),
    sa.Column("paid_cents", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

invoice_lines = sa.Table(
    "invoice_lines",
    metadata,
    sa.Column(
        "invoice_id", sa.Integer, sa.ForeignKey("invoices.invoice_id"), primary_key=True
    ),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.Integer, nullable=False),
    sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("discount_hundredths", sa.Integer, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("payment_id", sa.String(36), primary_key=True),
    sa.Column(
        "invoice_id",
        sa.Integer,
        sa.ForeignKey("invoices.invoice_id"),
        nullable=False,
        index=True,
    ),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
)

outbox = outbox_table(metadata, "billing")
inbox = inbox_table(metadata, "billing")
