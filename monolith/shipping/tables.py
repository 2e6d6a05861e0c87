"""The tables shipping owns."""

import sqlalchemy as sa

from migrate.kernel.sql import inbox_table, outbox_table

metadata = sa.MetaData()

shippers = sa.Table(
    "shippers",
    metadata,
    sa.Column("shipper_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("company_name", sa.String(60), nullable=False),
    sa.Column("phone", sa.String(30)),
)

shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("shipper_id", sa.Integer, sa.ForeignKey("shippers.shipper_id")),
    sa.Column("ship_name", sa.String(60)),
    sa.Column("ship_address", sa.String(80)),
    sa.Column("ship_city", sa.String(30)),
    sa.Column("ship_region", sa.String(30)),
    sa.Column("ship_postal_code", sa.String(15)),
    sa.Column("ship_country", sa.String(30)),
    sa.Column("shipped_at", sa.String(40)),
)

outbox = outbox_table(metadata, "shipping")
inbox = inbox_table(metadata, "shipping")
