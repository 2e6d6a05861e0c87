"""Ordering, as a consumer of catalog and customers over HTTP.

Ordering's own use case (`place_order`) runs with its ports answered by the
HTTP adapters a service host of ordering would use, against mock providers
that answer exactly as the contracts say.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from consumer_pacts import ordering_catalog, ordering_customers
from contract_helpers import served

from migrate.contracts.remote import HttpCatalog, HttpCustomers, RemoteCallFailed
from migrate.schema import upgrade
from monolith.host import Monolith
from monolith.ordering import handlers
from monolith.ordering.domain import Order, UnknownCustomer, UnknownProduct


@pytest.fixture
def ordering(tmp_path: Path) -> Monolith:
    url = f"sqlite:///{tmp_path / 'ordering.db'}"
    upgrade(url)
    return Monolith(url)


def place(ordering: Monolith, catalog: str, customers: str, customer: str,
          product: int) -> Order:
    command = handlers.PlaceOrder(customer, (handlers.LineRequest(product, 12),))
    return handlers.place_order(command, ordering.unit_of_work("ordering"),
                                HttpCatalog(catalog), HttpCustomers(customers))


def test_ordering_prices_an_order_from_the_catalog_over_http(
    ordering: Monolith,
) -> None:
    with served(ordering_catalog()) as catalog, \
            served(ordering_customers()) as customers:
        order = place(ordering, catalog, customers, "ALFKI", 11)

    assert order.lines[0].unit_price == Decimal("14.00")
    assert order.total == Decimal("168.00")


def test_an_order_for_a_product_the_catalog_lacks_is_refused(
    ordering: Monolith,
) -> None:
    with served(ordering_catalog()) as catalog, \
            served(ordering_customers()) as customers:
        with pytest.raises(UnknownProduct, match="99999"):
            place(ordering, catalog, customers, "ALFKI", 99999)


def test_an_order_for_a_customer_nobody_registered_is_refused(
    ordering: Monolith,
) -> None:
    with served(ordering_catalog()) as catalog, \
            served(ordering_customers()) as customers:
        with pytest.raises(UnknownCustomer, match="NOONE"):
            place(ordering, catalog, customers, "NOONE", 11)


def test_an_answer_the_contract_does_not_promise_is_an_outage() -> None:
    with ordering_catalog().serve(addr="127.0.0.1", raises=False,
                                  verbose=False) as catalog:
        with pytest.raises(RemoteCallFailed, match="/products/12 answered 500"):
            HttpCatalog(str(catalog.url)).prices([12])
