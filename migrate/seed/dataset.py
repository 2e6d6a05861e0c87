"""The seed data set: the Northwind tables the kit loads, as frozen records.

Whatever the source, a `Dataset` holds plain values: ids as int (customer
ids as str, without the padding of a `character(n)` column), dates as ISO
strings (`1996-07-04`), money as `Decimal` to the cent, discounts as
`Decimal` to the hundredth, and None only where the field's type says so.
Records follow the source's order; nothing here checks that an order's
customer or a line's product exists, which is the database's job once the
rows are loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Category:
    category_id: int
    name: str
    description: str | None


@dataclass(frozen=True, slots=True)
class Supplier:
    supplier_id: int
    company_name: str
    contact_name: str | None
    city: str | None
    country: str | None
    phone: str | None


@dataclass(frozen=True, slots=True)
class Product:
    product_id: int
    name: str
    supplier_id: int
    category_id: int
    quantity_per_unit: str | None
    unit_price: Decimal
    units_in_stock: int
    discontinued: bool


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    company_name: str
    contact_name: str | None
    contact_title: str | None
    address: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None
    phone: str | None


@dataclass(frozen=True, slots=True)
class Shipper:
    shipper_id: int
    company_name: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class Order:
    order_id: int
    customer_id: str
    employee_id: int
    ordered_at: str
    required_at: str
    shipped_at: str | None
    ship_via: int
    freight: Decimal
    ship_name: str | None
    ship_address: str | None
    ship_city: str | None
    ship_region: str | None
    ship_postal_code: str | None
    ship_country: str | None


@dataclass(frozen=True, slots=True)
class OrderLine:
    order_id: int
    product_id: int
    unit_price: Decimal
    quantity: int
    discount: Decimal


def _no_tables() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Dataset:
    """Everything `migrate seed` loads, plus what the source held beyond it.

    `skipped` maps each table of the source that the kit does not load to
    its row count (0 for a table that was created but never filled), in
    alphabetical order, so a command can say what it left out.
    """

    categories: tuple[Category, ...]
    suppliers: tuple[Supplier, ...]
    products: tuple[Product, ...]
    customers: tuple[Customer, ...]
    shippers: tuple[Shipper, ...]
    orders: tuple[Order, ...]
    order_lines: tuple[OrderLine, ...]
    skipped: Mapping[str, int] = field(default_factory=_no_tables)

    def counts(self) -> dict[str, int]:
        """Records per kind, in loading order: parents before children."""
        return {
            "categories": len(self.categories),
            "suppliers": len(self.suppliers),
            "products": len(self.products),
            "customers": len(self.customers),
            "shippers": len(self.shippers),
            "orders": len(self.orders),
            "order_lines": len(self.order_lines),
        }
