"""Lending's use cases."""

from __future__ import annotations

import dataclasses
import uuid

from library.lending.domain import (
    CopyOnLoan,
    Loan,
    LoanNotFound,
    MemberMayNotBorrow,
    NoSuchCopy,
)
from library.lending.events import BookLent, BookReturned
from library.lending.ports import Catalogue, Members, UnitOfWork


@dataclasses.dataclass(frozen=True)
class Lend:
    member_id: str
    isbn: str
    copy_no: int
    lent_at: str


def lend(command: Lend, uow: UnitOfWork, members: Members,
         catalogue: Catalogue) -> Loan:
    """Lend a copy to a member who may borrow, unless it is out already."""
    if not members.may_borrow(command.member_id):
        raise MemberMayNotBorrow(command.member_id)

    if not catalogue.has_copy(command.isbn, command.copy_no):
        raise NoSuchCopy(command.isbn, command.copy_no)

    with uow:
        out = uow.loans.open_loan_of(command.isbn, command.copy_no)
        if out is not None:
            raise CopyOnLoan(command.isbn, command.copy_no, out.loan_id)

        loan = Loan(str(uuid.uuid4()), command.member_id, command.isbn,
                    command.copy_no, command.lent_at)
        uow.loans.add(loan)
        uow.record(BookLent(loan.loan_id, loan.member_id, loan.isbn, loan.copy_no,
                            loan.lent_at))
        uow.commit()
    return loan


def give_back(loan_id: str, returned_at: str, uow: UnitOfWork) -> Loan:
    with uow:
        loan = uow.loans.get(loan_id)
        if loan is None:
            raise LoanNotFound(loan_id)

        loan.give_back(returned_at)
        uow.loans.save(loan)
        uow.record(BookReturned(loan.loan_id, loan.member_id, returned_at))
        uow.commit()
    return loan
