"""Customers. Plain Python: no framework, no ORM, no vendor."""

from __future__ import annotations

import dataclasses


class CustomersError(Exception):
    """Root of the errors the customers context raises."""


class CustomerNotFound(CustomersError):
    def __init__(self, customer_id: str):
        super().__init__(f"no customer {customer_id!r}")
        self.customer_id = customer_id


@dataclasses.dataclass(frozen=True)
class Customer:
    customer_id: str
    company_name: str
    contact_name: str | None = None
    contact_title: str | None = None
    address: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None
    phone: str | None = None
