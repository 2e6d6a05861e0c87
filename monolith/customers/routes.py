"""The customers context's HTTP routes."""

from __future__ import annotations

from migrate.kernel.http import Reply, Request, Route
from monolith.customers import api
from monolith.customers.domain import CustomerNotFound
from monolith.customers.ports import Ports


def get_customer(ports: Ports, request: Request) -> Reply:
    return Reply(200, api.customer(ports.query(), request.params["customer_id"]))


ROUTES = [
    Route("GET", "/customers/<customer_id>", get_customer, bucket_key="customer_id"),
]

ERRORS: dict[type[Exception], tuple[int, str]] = {
    CustomerNotFound: (404, "customer_not_found"),
}
