"""Products and what they cost. Plain Python: no framework, no ORM, no vendor."""

from __future__ import annotations

import dataclasses
from decimal import Decimal


class CatalogError(Exception):
    """Root of the errors catalog's rules raise."""


class ProductNotFound(CatalogError):
    def __init__(self, product_id: int):
        super().__init__(f"no product {product_id}")
        self.product_id = product_id


@dataclasses.dataclass(frozen=True)
class Category:
    category_id: int
    name: str
    description: str | None = None


@dataclasses.dataclass(frozen=True)
class Supplier:
    supplier_id: int
    company_name: str
    country: str | None = None


@dataclasses.dataclass(frozen=True)
class Product:
    product_id: int
    name: str
    unit_price: Decimal
    category_id: int | None = None
    supplier_id: int | None = None
    quantity_per_unit: str | None = None
    units_in_stock: int = 0
    discontinued: bool = False
