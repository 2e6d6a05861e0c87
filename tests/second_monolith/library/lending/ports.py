"""What lending needs from outside: its loans, members and the catalogue.

The monolith answers `Members` and `Catalogue` by calling those contexts'
APIs in-process; a service host of lending calls them over HTTP through
the router.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from library.lending.domain import Loan
from migrate.kernel.events import Event


class Loans(Protocol):
    def get(self, loan_id: str) -> Loan | None: ...

    def open_loan_of(self, isbn: str, copy_no: int) -> Loan | None: ...

    def add(self, loan: Loan) -> None: ...

    def save(self, loan: Loan) -> None: ...


class UnitOfWork(Protocol):
    loans: Loans

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def record(self, event: Event) -> None: ...

    def commit(self) -> None: ...


class Members(Protocol):
    def may_borrow(self, member_id: str) -> bool: ...


class Catalogue(Protocol):
    def has_copy(self, isbn: str, copy_no: int) -> bool: ...


class Ports(Protocol):
    command: Callable[[], UnitOfWork]
    query: Callable[[], UnitOfWork]
    members: Members
    catalogue: Catalogue
