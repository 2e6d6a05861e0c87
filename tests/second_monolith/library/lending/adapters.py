"""Lending's repository and unit of work on SQLAlchemy Core."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from library.lending.domain import Loan
from library.lending.tables import loans
from migrate.kernel.uow import UnitOfWork


class SqlLoans:
    def __init__(self, connection: Connection):
        self._db = connection

    def get(self, loan_id: str) -> Loan | None:
        row = self._db.execute(
            sa.select(loans).where(loans.c.loan_id == loan_id)
        ).first()
        return Loan(**row._mapping) if row else None

    def open_loan_of(self, isbn: str, copy_no: int) -> Loan | None:
        row = self._db.execute(
            sa.select(loans).where(
                loans.c.isbn == isbn,
                loans.c.copy_no == copy_no,
                loans.c.returned_at.is_(None),
            )
        ).first()
        return Loan(**row._mapping) if row else None

    def add(self, loan: Loan) -> None:
        self._db.execute(loans.insert().values(**dataclasses.asdict(loan)))

    def save(self, loan: Loan) -> None:
        self._db.execute(
            loans.update()
            .where(loans.c.loan_id == loan.loan_id)
            .values(returned_at=loan.returned_at)
        )


class LendingUnitOfWork(UnitOfWork):
    context = "lending"

    def __enter__(self) -> LendingUnitOfWork:
        super().__enter__()
        self.loans = SqlLoans(self.connection)
        return self
