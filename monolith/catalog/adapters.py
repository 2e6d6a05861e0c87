"""Catalog's repository and unit of work on SQLAlchemy Core."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.kernel import money
from migrate.kernel.uow import UnitOfWork
from monolith.catalog.domain import Category, Product, Supplier
from monolith.catalog.tables import categories, products, suppliers


class SqlProducts:
    def __init__(self, connection: Connection):
        self._db = connection

    def get(self, product_id: int) -> Product | None:
        return self.many([product_id]).get(product_id)

    def many(self, product_ids: list[int]) -> dict[int, Product]:
        rows = self._db.execute(
            sa.select(products).where(products.c.product_id.in_(product_ids))
        )
        return {row.product_id: _product(row) for row in rows}

    def all(self) -> list[Product]:
        rows = self._db.execute(sa.select(products).order_by(products.c.product_id))
        return [_product(row) for row in rows]

    def add(self, product: Product) -> None:
        self._db.execute(
            products.insert().values(
                product_id=product.product_id,
                name=product.name,
                category_id=product.category_id,
                supplier_id=product.supplier_id,
                quantity_per_unit=product.quantity_per_unit,
                unit_price_cents=money.to_cents(product.unit_price),
                units_in_stock=product.units_in_stock,
                discontinued=product.discontinued,
            )
        )

    def add_category(self, category: Category) -> None:
        self._db.execute(
            categories.insert().values(
                category_id=category.category_id,
                name=category.name,
                description=category.description,
            )
        )

    def add_supplier(self, supplier: Supplier) -> None:
        self._db.execute(
            suppliers.insert().values(
                supplier_id=supplier.supplier_id,
                company_name=supplier.company_name,
                country=supplier.country,
            )
        )


def _product(row: sa.Row) -> Product:
    return Product(
        product_id=row.product_id,
        name=row.name,
        unit_price=money.from_cents(row.unit_price_cents),
        category_id=row.category_id,
        supplier_id=row.supplier_id,
        quantity_per_unit=row.quantity_per_unit,
        units_in_stock=row.units_in_stock,
        discontinued=bool(row.discontinued),
    )


class CatalogUnitOfWork(UnitOfWork):
    context = "catalog"

    def __enter__(self) -> CatalogUnitOfWork:
        super().__enter__()
        self.products = SqlProducts(self.connection)
        return self
