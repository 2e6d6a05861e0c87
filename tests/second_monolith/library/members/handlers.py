"""The members context's use cases, and what it does with lending's events."""

from __future__ import annotations

from library.lending.events import BookLent, BookReturned
from library.members.domain import Member, MemberExists
from library.members.ports import UnitOfWork


def register(uow: UnitOfWork, new: list[Member]) -> None:
    with uow:
        for member in new:
            if uow.members.get(member.member_id) is not None:
                raise MemberExists(member.member_id)

            uow.members.add(member)
        uow.commit()


def count_loan(event: BookLent, uow: UnitOfWork) -> None:
    with uow:
        uow.members.count_loans(event.member_id, +1)
        uow.commit()


def count_return(event: BookReturned, uow: UnitOfWork) -> None:
    with uow:
        uow.members.count_loans(event.member_id, -1)
        uow.commit()


EVENT_HANDLERS = {
    BookLent: count_loan,
    BookReturned: count_return,
}
