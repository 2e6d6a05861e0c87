"""The tables lending owns; a loan is keyed by a UUID."""

import sqlalchemy as sa

from migrate.kernel.sql import inbox_table, outbox_table

metadata = sa.MetaData()

loans = sa.Table(
    "loans",
    metadata,
    sa.Column("loan_id", sa.String(36), primary_key=True),
    sa.Column("member_id", sa.String(8), nullable=False, index=True),
    sa.Column("isbn", sa.String(13), nullable=False),
    sa.Column("copy_no", sa.Integer, nullable=False),
    sa.Column("lent_at", sa.String(40), nullable=False),
    sa.Column("returned_at", sa.String(40)),
)

outbox = outbox_table(metadata, "lending")
inbox = inbox_table(metadata, "lending")
