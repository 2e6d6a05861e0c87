"""What ordering needs from outside: its storage, and three other contexts.

The monolith answers `Catalog`, `Customers` and `Shipping` with in-process
calls to those contexts' APIs; a service host answers them over HTTP through
the router.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Protocol

from migrate.kernel.events import Event
from monolith.ordering.domain import Order


class Orders(Protocol):
    def get(self, order_id: int) -> Order | None: ...

    def add(self, order: Order) -> None: ...

    def next_id(self) -> int: ...

    def move_next_id_past(self, order_id: int) -> None: ...


class UnitOfWork(Protocol):
    orders: Orders

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def record(self, event: Event) -> None: ...

    def commit(self) -> None: ...


class Catalog(Protocol):
    def prices(self, product_ids: list[int]) -> dict[int, Decimal]: ...


class Customers(Protocol):
    def exists(self, customer_id: str) -> bool: ...


class Shipping(Protocol):
    def shipper_exists(self, shipper_id: int) -> bool: ...


class Ports(Protocol):
    command: Callable[[], UnitOfWork]
    query: Callable[[], UnitOfWork]
    catalog: Catalog
    customers: Customers
    shipping: Shipping
