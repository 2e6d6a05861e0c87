"""The customers context's public surface."""

from __future__ import annotations

import dataclasses
from typing import Any

from monolith.customers.domain import CustomerNotFound
from monolith.customers.ports import UnitOfWork


def customer(uow: UnitOfWork, customer_id: str) -> dict[str, Any]:
    with uow:
        found = uow.customers.get(customer_id)
    if found is None:
        raise CustomerNotFound(customer_id)

    return dataclasses.asdict(found)


def exists(uow: UnitOfWork, customer_id: str) -> bool:
    with uow:
        return uow.customers.get(customer_id) is not None
