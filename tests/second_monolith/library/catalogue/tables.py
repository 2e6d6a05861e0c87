"""The tables the catalogue owns: a copy is keyed by its book and its number."""

import sqlalchemy as sa

from migrate.kernel.sql import inbox_table, outbox_table

metadata = sa.MetaData()

books = sa.Table(
    "books",
    metadata,
    sa.Column("isbn", sa.String(13), primary_key=True),
    sa.Column("title", sa.String(120), nullable=False),
)

copies = sa.Table(
    "copies",
    metadata,
    sa.Column("isbn", sa.String(13), sa.ForeignKey("books.isbn"), primary_key=True),
    sa.Column("copy_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("shelf", sa.String(10), nullable=False),
)

outbox = outbox_table(metadata, "catalogue")
inbox = inbox_table(metadata, "catalogue")
