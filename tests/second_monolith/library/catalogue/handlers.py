"""The catalogue's use cases."""

from __future__ import annotations

from library.catalogue.domain import Book
from library.catalogue.ports import UnitOfWork


def add_books(uow: UnitOfWork, new: list[Book]) -> None:
    with uow:
        for book in new:
            uow.books.add(book)
        uow.commit()
