"""The customers repository and unit of work on SQLAlchemy Core."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.kernel.uow import UnitOfWork
from monolith.customers.domain import Customer
from monolith.customers.tables import customers


class SqlCustomers:
    def __init__(self, connection: Connection):
        self._db = connection

    def get(self, customer_id: str) -> Customer | None:
        row = self._db.execute(
            sa.select(customers).where(customers.c.customer_id == customer_id)
        ).first()
        return Customer(**row._mapping) if row else None

    def add(self, customer: Customer) -> None:
        self._db.execute(customers.insert().values(**dataclasses.asdict(customer)))


class CustomersUnitOfWork(UnitOfWork):
    context = "customers"

    def __enter__(self) -> CustomersUnitOfWork:
        super().__enter__()
        self.customers = SqlCustomers(self.connection)
        return self
