"""The router, as a consumer of the routes it forwards to billing.

The real router runs in front of a mock billing that answers as the
router's contract says, with billing's reads and writes both pointed at it
(reads at weight 100, writes to the writer). What the router relies on is
then shown by what it does: it relays billing's answers whole, and it
recognises a host that refuses a write because it does not write billing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from consumer_pacts import router_billing
from contract_helpers import ServerThread, served

from migrate.manifest import load
from migrate.router.proxy import NOT_WRITER_HEADER, Settings, create_app
from migrate.router.state import MONOLITH, StateStore


@pytest.fixture
def router(tmp_path: Path) -> Iterator[str]:
    with served(router_billing()) as billing:
        store = StateStore(tmp_path / "router.db")
        store.set_backend(MONOLITH, billing)
        store.set_backend("billing", billing)
        routes = [(r.method, r.rule, r.bucket_key)
                  for r in load().context("billing").route_list]
        store.register_routes("billing", "billing", routes)
        store.set_weight("billing", 100, "test", "every read to the service")
        # Short holds and retries: the router gives up on a refused write soon.
        server = ServerThread(
            create_app(store, Settings(hold_timeout=0.5, retry_timeout=0.5))
        ).start()
        try:
            yield server.url
        finally:
            server.stop()


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
