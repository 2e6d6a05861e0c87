"""What catalog needs from outside, as protocols its hosts implement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from migrate.kernel.events import Event
from monolith.catalog.domain import Category, Product, Supplier


class Products(Protocol):
    def get(self, product_id: int) -> Product | None: ...

    def many(self, product_ids: list[int]) -> dict[int, Product]: ...

    def all(self) -> list[Product]: ...

    def add(self, product: Product) -> None: ...

    def add_category(self, category: Category) -> None: ...

    def add_supplier(self, supplier: Supplier) -> None: ...


class UnitOfWork(Protocol):
    products: Products

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def record(self, event: Event) -> None: ...

    def commit(self) -> None: ...


class Ports(Protocol):
    command: Callable[[], UnitOfWork]
    query: Callable[[], UnitOfWork]
