"""The catalogue's public surface."""

from __future__ import annotations

from typing import Any

from library.catalogue.domain import BookNotFound
from library.catalogue.ports import UnitOfWork


def book(uow: UnitOfWork, isbn: str) -> dict[str, Any]:
    with uow:
        found = uow.books.get(isbn)
    if found is None:
        raise BookNotFound(isbn)

    return {
        "isbn": found.isbn,
        "title": found.title,
        "copies": [{"copy_no": c.copy_no, "shelf": c.shelf} for c in found.copies],
    }


def has_copy(uow: UnitOfWork, isbn: str, copy_no: int) -> bool:
    with uow:
        return uow.books.has_copy(isbn, copy_no)
