"""Loans. Plain Python: no framework, no ORM, no vendor."""

from __future__ import annotations

import dataclasses


class LendingError(Exception):
    """Root of the errors lending's rules raise."""


class LoanNotFound(LendingError):
    def __init__(self, loan_id: str):
        super().__init__(f"no loan {loan_id!r}")
        self.loan_id = loan_id


class MemberMayNotBorrow(LendingError):
    def __init__(self, member_id: str):
        super().__init__(f"member {member_id!r} is not registered or may not borrow")
        self.member_id = member_id


class NoSuchCopy(LendingError):
    def __init__(self, isbn: str, copy_no: int):
        super().__init__(f"the catalogue has no copy {copy_no} of {isbn!r}")
        self.isbn = isbn
        self.copy_no = copy_no


class CopyOnLoan(LendingError):
    def __init__(self, isbn: str, copy_no: int, loan_id: str):
        super().__init__(f"copy {copy_no} of {isbn!r} is out on loan {loan_id}")
        self.loan_id = loan_id


class AlreadyReturned(LendingError):
    def __init__(self, loan_id: str, returned_at: str):
        super().__init__(f"loan {loan_id} was returned on {returned_at}")
        self.loan_id = loan_id


@dataclasses.dataclass
class Loan:
    loan_id: str
    member_id: str
    isbn: str
    copy_no: int
    lent_at: str
    returned_at: str | None = None

    def give_back(self, returned_at: str) -> None:
        if self.returned_at:
            raise AlreadyReturned(self.loan_id, self.returned_at)

        self.returned_at = returned_at
