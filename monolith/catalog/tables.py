"""The tables catalog owns. Prices are integer cents."""

import sqlalchemy as sa

from migrate.kernel.sql import inbox_table, outbox_table

metadata = sa.MetaData()

categories = sa.Table(
    "categories",
    metadata,
    sa.Column("category_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("description", sa.Text),
)

suppliers = sa.Table(
    "suppliers",
    metadata,
    sa.Column("supplier_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("company_name", sa.String(60), nullable=False),
    sa.Column("country", sa.String(30)),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.category_id")),
    sa.Column("supplier_id", sa.Integer, sa.ForeignKey("suppliers.supplier_id")),
    sa.Column("quantity_per_unit", sa.String(30)),
    sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
    sa.Column("units_in_stock", sa.Integer, nullable=False),
    sa.Column("discontinued", sa.Boolean, nullable=False),
)

outbox = outbox_table(metadata, "catalog")
inbox = inbox_table(metadata, "catalog")
