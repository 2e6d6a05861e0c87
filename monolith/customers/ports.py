"""What the customers context needs from outside."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from migrate.kernel.events import Event
from monolith.customers.domain import Customer


class Customers(Protocol):
    def get(self, customer_id: str) -> Customer | None: ...

    def add(self, customer: Customer) -> None: ...


class UnitOfWork(Protocol):
    customers: Customers

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def record(self, event: Event) -> None: ...

    def commit(self) -> None: ...


class Ports(Protocol):
    command: Callable[[], UnitOfWork]
    query: Callable[[], UnitOfWork]
