"""The tables the customers context owns."""

import sqlalchemy as sa

from migrate.kernel.sql import inbox_table, outbox_table

metadata = sa.MetaData()

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.String(5), primary_key=True),
    sa.Column("company_name", sa.String(60), nullable=False),
    sa.Column("contact_name", sa.String(40)),
    sa.Column("contact_title", sa.String(40)),
    sa.Column("address", sa.String(80)),
    sa.Column("city", sa.String(30)),
    sa.Column("region", sa.String(30)),
    sa.Column("postal_code", sa.String(15)),
    sa.Column("country", sa.String(30)),
    sa.Column("phone", sa.String(30)),
)

outbox = outbox_table(metadata, "customers")
inbox = inbox_table(metadata, "customers")
