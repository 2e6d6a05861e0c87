"""The catalogue's repository and unit of work on SQLAlchemy Core."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from library.catalogue.domain import Book, Copy
from library.catalogue.tables import books, copies
from migrate.kernel.uow import UnitOfWork


class SqlBooks:
    def __init__(self, connection: Connection):
        self._db = connection

    def get(self, isbn: str) -> Book | None:
        head = self._db.execute(sa.select(books).where(books.c.isbn == isbn)).first()
        if head is None:
            return None

        shelved = self._db.execute(
            sa.select(copies).where(copies.c.isbn == isbn).order_by(copies.c.copy_no)
        )
        return Book(head.isbn, head.title,
                    tuple(Copy(c.copy_no, c.shelf) for c in shelved))

    def add(self, book: Book) -> None:
        self._db.execute(books.insert().values(isbn=book.isbn, title=book.title))
        if book.copies:
            self._db.execute(
                copies.insert(),
                [{"isbn": book.isbn, "copy_no": c.copy_no, "shelf": c.shelf}
                 for c in book.copies],
            )

    def has_copy(self, isbn: str, copy_no: int) -> bool:
        found = self._db.execute(
            sa.select(copies.c.copy_no).where(
                copies.c.isbn == isbn, copies.c.copy_no == copy_no
            )
        ).first()
        return found is not None


class CatalogueUnitOfWork(UnitOfWork):
    context = "catalogue"

    def __enter__(self) -> CatalogueUnitOfWork:
        super().__enter__()
        self.books = SqlBooks(self.connection)
        return self
