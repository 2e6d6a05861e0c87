"""The tables the members context owns; members are keyed by text."""

import sqlalchemy as sa

from migrate.kernel.sql import inbox_table, outbox_table

metadata = sa.MetaData()

members = sa.Table(
    "members",
    metadata,
    sa.Column("member_id", sa.String(8), primary_key=True),
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("loans_out", sa.Integer, nullable=False),
)

outbox = outbox_table(metadata, "members")
inbox = inbox_table(metadata, "members")
