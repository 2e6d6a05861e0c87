"""Lending's public surface."""

from __future__ import annotations

import dataclasses
from typing import Any

from library.lending.domain import Loan, LoanNotFound
from library.lending.ports import UnitOfWork


def loan_view(loan: Loan) -> dict[str, Any]:
    return dataclasses.asdict(loan)


def loan(uow: UnitOfWork, loan_id: str) -> dict[str, Any]:
    with uow:
        found = uow.loans.get(loan_id)
    if found is None:
        raise LoanNotFound(loan_id)

    return loan_view(found)
