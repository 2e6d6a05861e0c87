"""Catalog's public surface: products as everyone outside catalog sees them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from migrate.kernel import money
from monolith.catalog.domain import Product, ProductNotFound
from monolith.catalog.ports import UnitOfWork


def product_view(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "unit_price": money.text(product.unit_price),
        "category_id": product.category_id,
        "supplier_id": product.supplier_id,
        "quantity_per_unit": product.quantity_per_unit,
        "units_in_stock": product.units_in_stock,
        "discontinued": product.discontinued,
    }


def product(uow: UnitOfWork, product_id: int) -> dict[str, Any]:
    with uow:
        found = uow.products.get(product_id)
    if found is None:
        raise ProductNotFound(product_id)

    return product_view(found)


def products(uow: UnitOfWork) -> list[dict[str, Any]]:
    with uow:
        return [product_view(p) for p in uow.products.all()]


def prices(uow: UnitOfWork, product_ids: list[int]) -> dict[int, Decimal]:
    """Current unit prices of the products that exist among those asked for."""
    with uow:
        found = uow.products.many(product_ids)
    return {pid: p.unit_price for pid, p in found.items()}
