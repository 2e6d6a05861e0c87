"""Ordering's ports answered over HTTP, as a service host of ordering wires them.

In the monolith ordering asks catalog and customers in-process
(`monolith.host.InProcessCatalog`, `InProcessCustomers`). Once those
contexts are services, the same ports are answered by their public routes
through the router: `GET /products/<id>` and `GET /customers/<id>`. These
adapters are what ordering's consumer contracts are written against, so a
contract says exactly what these calls need.

What they guarantee: a 404 means "not there" (an unknown product is left out
of `prices`, an unknown customer does not exist); any other failure raises
`RemoteCallFailed` naming the URL and the status, so ordering never mistakes
an outage for a missing product. Each call times out after `timeout` seconds
(default 5). They do not retry.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

import requests

from migrate.errors import MigrateError


class RemoteCallFailed(MigrateError):
    def __init__(self, url: str, status: int | str):
        super().__init__(f"GET {url} answered {status}; expected 200 or 404")
        self.url = url
        self.status = status


class _Remote:
    def __init__(self, base_url: str, *, timeout: float = 5.0,
                 session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def _get(self, path: str) -> dict | None:
        url = f"{self.base_url}{path}"
        try:
            reply = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as error:
            raise RemoteCallFailed(url, type(error).__name__) from error

        if reply.status_code == 404:
            return None
        if reply.status_code != 200:
            raise RemoteCallFailed(url, reply.status_code)

        body: dict = reply.json()
        return body


class HttpCatalog(_Remote):
    """Ordering's `Catalog` port over catalog's `GET /products/<id>`."""

    def prices(self, product_ids: list[int]) -> dict[int, Decimal]:
        found = {}
        for product_id in dict.fromkeys(product_ids):
            product = self._get(f"/products/{int(product_id)}")
            if product is not None:
                found[product_id] = Decimal(product["unit_price"])
        return found


class HttpCustomers(_Remote):
    """Ordering's `Customers` port over customers' `GET /customers/<id>`."""

    def exists(self, customer_id: str) -> bool:
        return self._get(f"/customers/{quote(customer_id, safe='')}") is not None
