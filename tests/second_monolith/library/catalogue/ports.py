"""What the catalogue needs from outside."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from library.catalogue.domain import Book
from migrate.kernel.events import Event


class Books(Protocol):
    def get(self, isbn: str) -> Book | None: ...

    def add(self, book: Book) -> None: ...

    def has_copy(self, isbn: str, copy_no: int) -> bool: ...


class UnitOfWork(Protocol):
    books: Books

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def record(self, event: Event) -> None: ...

    def commit(self) -> None: ...


class Ports(Protocol):
    command: Callable[[], UnitOfWork]
    query: Callable[[], UnitOfWork]
