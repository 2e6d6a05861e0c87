"""The router, as a consumer of the routes it forwards to each context.

The real router runs in front of a mock context that answers as the
router's contract with it says, with the context's reads and writes both
pointed at it (reads at weight 100, writes to the writer). What the router
relies on is then shown by what it does: it relays each context's answers
whole, and it recognises a host that refuses a write because it does not
write the context.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from consumer_pacts import (
    new_order,
    router_billing,
    router_catalog,
    router_customers,
    router_ordering,
    router_shipping,
)
from contract_helpers import ServerThread, served
from pact import Pact

from migrate.manifest import load
from migrate.router.proxy import NOT_WRITER_HEADER, Settings, create_app
from migrate.router.state import MONOLITH, StateStore


@contextlib.contextmanager
def _router_before(context: str, pact: Pact, folder: Path) -> Iterator[str]:
    """The router's URL, with every route of `context` sent to the pact's mock."""
    with served(pact) as mock:
        store = StateStore(folder / "router.db")
        store.set_backend(MONOLITH, mock)
        store.set_backend(context, mock)
        routes = [(r.method, r.rule, r.bucket_key)
                  for r in load().context(context).route_list]
        store.register_routes(context, context, routes)
        store.set_weight(context, 100, "test", "every read to the service")
        # Short holds and retries: the router gives up on a refused write soon.
        server = ServerThread(
            create_app(store, Settings(hold_timeout=0.5, retry_timeout=0.5))
        ).start()
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[str]:
    with _router_before("billing", router_billing(), tmp_path) as url:
        yield url


def test_the_router_relays_an_invoice_from_billing(router: str) -> None:
    reply = requests.get(f"{router}/invoices/10248", timeout=10)

    assert reply.status_code == 200
    assert reply.headers["X-Migrate-Backend"] == "billing"
    assert reply.json()["invoice_id"] == 10248


def test_the_router_relays_a_missing_invoice_as_billing_said_it(router: str) -> None:
    reply = requests.get(f"{router}/invoices/99999", timeout=10)

    assert reply.status_code == 404
    assert reply.json()["error"] == "invoice_not_found"


def test_the_router_relays_a_customers_invoices(router: str) -> None:
    reply = requests.get(f"{router}/customers/TOMSP/invoices", timeout=10)

    assert reply.status_code == 200
    assert reply.json()["invoices"][0]["invoice_id"] == 10249


def test_the_router_relays_a_payment_with_where_to_find_it(router: str) -> None:
    reply = requests.post(f"{router}/invoices/10250/payments", json={"amount": "10.00"},
                          headers={"Idempotency-Key": "payment-10250-1"}, timeout=10)

    assert reply.status_code == 201
    assert reply.headers["Location"] == "/invoices/10250"


def test_the_router_retries_a_write_refused_by_a_host_that_does_not_write(
    router: str,
) -> None:
    reply = requests.post(f"{router}/invoices/10251/payments", json={"amount": "10.00"},
                          headers={"Idempotency-Key": "payment-10251-1"}, timeout=10)
    stats = requests.get(f"{router}/_router/stats", timeout=10).json()

    assert reply.status_code == 503
    assert reply.headers[NOT_WRITER_HEADER] == "billing"
    assert stats["not_writer_retries"]["billing"] >= 1


def test_the_router_relays_the_products_and_a_product_from_catalog(
    tmp_path: Path,
) -> None:
    with _router_before("catalog", router_catalog(), tmp_path) as router:
        products = requests.get(f"{router}/products", timeout=10)
        product = requests.get(f"{router}/products/42", timeout=10)
        missing = requests.get(f"{router}/products/99999", timeout=10)

    assert products.status_code == 200
    assert products.headers["X-Migrate-Backend"] == "catalog"
    assert products.json()["products"][0]["unit_price"] == "14.00"
    assert product.json()["product_id"] == 42
    assert (missing.status_code, missing.json()["error"]) == (404, "product_not_found")


def test_the_router_relays_a_customer_from_customers(tmp_path: Path) -> None:
    with _router_before("customers", router_customers(), tmp_path) as router:
        found = requests.get(f"{router}/customers/ALFKI", timeout=10)
        missing = requests.get(f"{router}/customers/NOONE", timeout=10)

    assert found.status_code == 200
    assert found.headers["X-Migrate-Backend"] == "customers"
    assert found.json()["company_name"] == "Alfreds Futterkiste"
    assert (missing.status_code, missing.json()["error"]) == (404, "customer_not_found")


def test_the_router_relays_an_order_from_ordering(tmp_path: Path) -> None:
    with _router_before("ordering", router_ordering(), tmp_path) as router:
        found = requests.get(f"{router}/orders/10280", timeout=10)
        missing = requests.get(f"{router}/orders/99999", timeout=10)

    assert found.status_code == 200
    assert found.json()["lines"][0]["discount"] == "0.15"
    assert (missing.status_code, missing.json()["error"]) == (404, "order_not_found")


def test_the_router_relays_a_placed_order_with_where_to_find_it(
    tmp_path: Path,
) -> None:
    with _router_before("ordering", router_ordering(), tmp_path) as router:
        placed = requests.post(f"{router}/orders", json=new_order(12), timeout=10)

    assert placed.status_code == 201
    assert placed.headers["Location"] == f"/orders/{placed.json()['order_id']}"


def test_the_router_relays_a_shipment_from_shipping(tmp_path: Path) -> None:
    with _router_before("shipping", router_shipping(), tmp_path) as router:
        found = requests.get(f"{router}/shipments/10290", timeout=10)
        missing = requests.get(f"{router}/shipments/99999", timeout=10)

    assert found.status_code == 200
    assert found.headers["X-Migrate-Backend"] == "shipping"
    assert found.json()["status"] == "shipped"
    assert (missing.status_code, missing.json()["error"]) == (404, "shipment_not_found")


def test_the_router_retries_an_order_refused_by_a_host_that_does_not_write(
    tmp_path: Path,
) -> None:
    with _router_before("ordering", router_ordering(), tmp_path) as router:
        refused = requests.post(f"{router}/orders", json=new_order(1), timeout=10)
        stats = requests.get(f"{router}/_router/stats", timeout=10).json()

    assert refused.status_code == 503
    assert refused.headers[NOT_WRITER_HEADER] == "ordering"
    assert stats["not_writer_retries"]["ordering"] >= 1
