"""What billing needs from outside, as protocols its hosts implement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from migrate.kernel.events import Event
from monolith.billing.domain import Invoice, Payment


class Invoices(Protocol):
    def get(self, invoice_id: int) -> Invoice | None: ...

    def of_customer(self, customer_id: str) -> list[Invoice]: ...

    def add(self, invoice: Invoice) -> None: ...

    def add_payment(self, invoice: Invoice, payment: Payment) -> None: ...

    def version_of(self, invoice_id: int) -> int | None: ...

    def replace(self, invoice: Invoice) -> None: ...


class UnitOfWork(Protocol):
    invoices: Invoices

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def record(self, event: Event) -> None: ...

    def commit(self) -> None: ...


class Ports(Protocol):
    """How a host hands billing its units of work.

    `command()` opens one that refuses to run unless this host is billing's
    writer; `query()` one for reads; `replica()` one for applying the
    writer's events to a replica.
    """

    command: Callable[[], UnitOfWork]
    query: Callable[[], UnitOfWork]
    replica: Callable[[], UnitOfWork]


class Mailbox(Protocol):
    def deliver(self, key: str, message: str) -> bool:
        """Deliver once per key; False when that key was delivered before."""
        ...


class Archive(Protocol):
    def store(self, name: str, content: bytes) -> bool:
        """Keep a document once per name; False when it was kept before."""
        ...
