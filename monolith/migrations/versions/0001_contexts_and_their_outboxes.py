"""contexts and their outboxes

Revision ID: 0001
Revises:
Create Date: 2026-12-03 18:57:16.449414

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "migrate_hosting",
        sa.Column("context", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("changed_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("context"),
    )
    op.create_table(
        "catalog_inbox",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("handled_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "catalog_outbox",
        sa.Column("position", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("aggregate_id", sa.String(length=80), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("published_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("catalog_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalog_outbox_published_at"), ["published_at"], unique=False
        )

    op.create_table(
        "categories",
        sa.Column("category_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("category_id"),
    )
    op.create_table(
        "suppliers",
        sa.Column("supplier_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("company_name", sa.String(length=60), nullable=False),
        sa.Column("country", sa.String(length=30), nullable=True),
        sa.PrimaryKeyConstraint("supplier_id"),
    )
    op.create_table(
        "products",
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("supplier_id", sa.Integer(), nullable=True),
        sa.Column("quantity_per_unit", sa.String(length=30), nullable=True),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("units_in_stock", sa.Integer(), nullable=False),
        sa.Column("discontinued", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.category_id"],
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.supplier_id"],
        ),
        sa.PrimaryKeyConstraint("product_id"),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=5), nullable=False),
        sa.Column("company_name", sa.String(length=60), nullable=False),
        sa.Column("contact_name", sa.String(length=40), nullable=True),
        sa.Column("contact_title", sa.String(length=40), nullable=True),
        sa.Column("address", sa.String(length=80), nullable=True),
        sa.Column("city", sa.String(length=30), nullable=True),
        sa.Column("region", sa.String(length=30), nullable=True),
        sa.Column("postal_code", sa.String(length=15), nullable=True),
        sa.Column("country", sa.String(length=30), nullable=True),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "customers_inbox",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("handled_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "customers_outbox",
        sa.Column("position", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("aggregate_id", sa.String(length=80), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("published_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("customers_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customers_outbox_published_at"),
            ["published_at"],
            unique=False,
        )

    op.create_table(
        "order_numbers",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_order_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "ordering_inbox",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("handled_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "ordering_outbox",
        sa.Column("position", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("aggregate_id", sa.String(length=80), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("published_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("ordering_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ordering_outbox_published_at"),
            ["published_at"],
            unique=False,
        )

    op.create_table(
        "orders",
        sa.Column("order_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customer_id", sa.String(length=5), nullable=False),
        sa.Column("ordered_at", sa.String(length=40), nullable=False),
        sa.Column("required_at", sa.String(length=40), nullable=True),
        sa.Column("ship_via", sa.Integer(), nullable=True),
        sa.Column("freight_cents", sa.BigInteger(), nullable=False),
        sa.Column("ship_name", sa.String(length=60), nullable=True),
        sa.Column("ship_address", sa.String(length=80), nullable=True),
        sa.Column("ship_city", sa.String(length=30), nullable=True),
        sa.Column("ship_region", sa.String(length=30), nullable=True),
        sa.Column("ship_postal_code", sa.String(length=15), nullable=True),
        sa.Column("ship_country", sa.String(length=30), nullable=True),
        sa.PrimaryKeyConstraint("order_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("discount_hundredths", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.order_id"],
        ),
        sa.PrimaryKeyConstraint("order_id", "line_no"),
    )
    op.create_table(
        "billing_inbox",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("handled_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "billing_outbox",
        sa.Column("position", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("aggregate_id", sa.String(length=80), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("published_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("billing_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billing_outbox_published_at"), ["published_at"], unique=False
        )

    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customer_id", sa.String(length=5), nullable=False),
        sa.Column("issued_at", sa.String(length=40), nullable=False),
        sa.Column("freight_cents", sa.BigInteger(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id"),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoices_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "invoice_lines",
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("discount_hundredths", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.invoice_id"],
        ),
        sa.PrimaryKeyConstraint("invoice_id", "line_no"),
    )
    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.invoice_id"],
        ),
        sa.PrimaryKeyConstraint("payment_id"),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payments_invoice_id"), ["invoice_id"], unique=False
        )

    op.create_table(
        "shippers",
        sa.Column("shipper_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("company_name", sa.String(length=60), nullable=False),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.PrimaryKeyConstraint("shipper_id"),
    )
    op.create_table(
        "shipping_inbox",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("handled_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "shipping_outbox",
        sa.Column("position", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("aggregate_id", sa.String(length=80), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("published_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("shipping_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shipping_outbox_published_at"),
            ["published_at"],
            unique=False,
        )

    op.create_table(
        "shipments",
        sa.Column("order_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shipper_id", sa.Integer(), nullable=True),
        sa.Column("ship_name", sa.String(length=60), nullable=True),
        sa.Column("ship_address", sa.String(length=80), nullable=True),
        sa.Column("ship_city", sa.String(length=30), nullable=True),
        sa.Column("ship_region", sa.String(length=30), nullable=True),
        sa.Column("ship_postal_code", sa.String(length=15), nullable=True),
        sa.Column("ship_country", sa.String(length=30), nullable=True),
        sa.Column("shipped_at", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["shipper_id"],
            ["shippers.shipper_id"],
        ),
        sa.PrimaryKeyConstraint("order_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("shipments")
    with op.batch_alter_table("shipping_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipping_outbox_published_at"))

    op.drop_table("shipping_outbox")
    op.drop_table("shipping_inbox")
    op.drop_table("shippers")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_invoice_id"))

    op.drop_table("payments")
    op.drop_table("invoice_lines")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_customer_id"))

    op.drop_table("invoices")
    with op.batch_alter_table("billing_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_outbox_published_at"))

    op.drop_table("billing_outbox")
    op.drop_table("billing_inbox")
    op.drop_table("order_lines")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_customer_id"))

    op.drop_table("orders")
    with op.batch_alter_table("ordering_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ordering_outbox_published_at"))

    op.drop_table("ordering_outbox")
    op.drop_table("ordering_inbox")
    op.drop_table("order_numbers")
    with op.batch_alter_table("customers_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_outbox_published_at"))

    op.drop_table("customers_outbox")
    op.drop_table("customers_inbox")
    op.drop_table("customers")
    op.drop_table("products")
    op.drop_table("suppliers")
    op.drop_table("categories")
    with op.batch_alter_table("catalog_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_outbox_published_at"))

    op.drop_table("catalog_outbox")
    op.drop_table("catalog_inbox")
    op.drop_table("migrate_hosting")
