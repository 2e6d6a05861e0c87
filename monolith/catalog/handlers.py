"""Catalog's use cases."""

from __future__ import annotations

from monolith.catalog.domain import Category, Product, Supplier
from monolith.catalog.ports import UnitOfWork


def add_to_catalog(
    uow: UnitOfWork,
    categories: list[Category],
    suppliers: list[Supplier],
    products: list[Product],
) -> None:
    """Add categories, suppliers and products in one transaction."""
    with uow:
        for category in categories:
            uow.products.add_category(category)
        for supplier in suppliers:
            uow.products.add_supplier(supplier)
        for product in products:
            uow.products.add(product)
        uow.commit()
