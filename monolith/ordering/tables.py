"""The tables ordering owns. Prices are integer cents; discounts hundredths."""

import sqlalchemy as sa

from migrate.kernel.sql import inbox_table, outbox_table

metadata = sa.MetaData()

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.String(5), nullable=False, index=True),
    sa.Column("ordered_at", sa.String(40), nullable=False),
    sa.Column("required_at", sa.String(40)),
    sa.Column("ship_via", sa.Integer),
    sa.Column("freight_cents", sa.BigInteger, nullable=False),
    sa.Column("ship_name", sa.String(60)),
    sa.Column("ship_address", sa.String(80)),
    sa.Column("ship_city", sa.String(30)),
    sa.Column("ship_region", sa.String(30)),
    sa.Column("ship_postal_code", sa.String(15)),
    sa.Column("ship_country", sa.String(30)),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column(
        "order_id", sa.Integer, sa.ForeignKey("orders.order_id"), primary_key=True
    ),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.Integer, nullable=False),
    sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("discount_hundredths", sa.Integer, nullable=False),
)

# One row: the next order number. Taking it with an UPDATE serialises
# concurrent orders on every database, and seeding moves it past history.
order_numbers = sa.Table(
    "order_numbers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("next_order_id", sa.Integer, nullable=False),
)

outbox = outbox_table(metadata, "ordering")
inbox = inbox_table(metadata, "ordering")
