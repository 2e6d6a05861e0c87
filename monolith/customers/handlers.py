"""The customers context's use cases."""

from __future__ import annotations

from monolith.customers.domain import Customer
from monolith.customers.ports import UnitOfWork


def register_customers(uow: UnitOfWork, customers: list[Customer]) -> None:
    with uow:
        for customer in customers:
            uow.customers.add(customer)
        uow.commit()
