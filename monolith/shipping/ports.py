"""What shipping needs from outside."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from migrate.kernel.events import Event
from monolith.shipping.domain import Shipment, Shipper


class Shipments(Protocol):
    def get(self, order_id: int) -> Shipment | None: ...

    def add(self, shipment: Shipment) -> None: ...

    def save(self, shipment: Shipment) -> None: ...

    def add_shipper(self, shipper: Shipper) -> None: ...

    def shipper_exists(self, shipper_id: int) -> bool: ...


class UnitOfWork(Protocol):
    shipments: Shipments

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def record(self, event: Event) -> None: ...

    def commit(self) -> None: ...


class Ports(Protocol):
    command: Callable[[], UnitOfWork]
    query: Callable[[], UnitOfWork]


class Mailbox(Protocol):
    def deliver(self, key: str, message: str) -> bool:
        """Deliver once per key; False when that key was delivered before."""
        ...
