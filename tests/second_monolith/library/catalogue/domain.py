"""Books and their copies. Plain Python: no framework, no ORM, no vendor."""

from __future__ import annotations

import dataclasses


class CatalogueError(Exception):
    """Root of the errors the catalogue raises."""


class BookNotFound(CatalogueError):
    def __init__(self, isbn: str):
        super().__init__(f"no book with ISBN {isbn!r}")
        self.isbn = isbn


@dataclasses.dataclass(frozen=True)
class Copy:
    copy_no: int
    shelf: str


@dataclasses.dataclass(frozen=True)
class Book:
    isbn: str
    title: str
    copies: tuple[Copy, ...] = ()
