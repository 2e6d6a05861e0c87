"""What lending announces. The members context counts loans from these."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from migrate.kernel.events import Event


@dataclasses.dataclass(frozen=True)
class BookLent(Event):
    context: ClassVar[str] = "lending"

    loan_id: str
    member_id: str
    isbn: str
    copy_no: int
    lent_at: str

    @property
    def aggregate_id(self) -> str:
        return self.loan_id


@dataclasses.dataclass(frozen=True)
class BookReturned(Event):
    context: ClassVar[str] = "lending"

    loan_id: str
    member_id: str
    returned_at: str

    @property
    def aggregate_id(self) -> str:
        return self.loan_id
