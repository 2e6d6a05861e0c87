"""Ordering, as a consumer of catalog, customers and shipping over HTTP.

Ordering's own use case (`place_order`) runs with its ports answered by the
clients `migrate extract ordering` generates for its service host, against
mock providers that answer exactly as the contracts say.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from consumer_pacts import ordering_catalog, ordering_customers, ordering_shipping
from contract_helpers import served

from migrate.extract.generate import render_clients
from migrate.hosts.calls import RemoteCallFailed
from migrate.manifest import load
from migrate.schema import upgrade
from monolith.host import Monolith
from monolith.ordering import handlers
from monolith.ordering.domain import (
    Order,
    UnknownCustomer,
    UnknownProduct,
    UnknownShipper,
)


@pytest.fixture(scope="module")
def clients() -> dict[str, Any]:
    """The generated `ordering_clients` module's client classes."""
    source = render_clients(load(), "ordering")
    assert source is not None
    module = types.ModuleType("ordering_clients")
    exec(compile(source, "ordering_clients.py", "exec"), module.__dict__)
    return dict(module.CLIENTS)


@pytest.fixture
def ordering(tmp_path: Path) -> Monolith:
    url = f"sqlite:///{tmp_path / 'ordering.db'}"
    upgrade(url)
    return Monolith(url)


@contextlib.contextmanager
def providers() -> Iterator[dict[str, str]]:
    """Mock catalog, customers and shipping, each answering as its contract
    with ordering says; their base URLs by port."""
    with served(ordering_catalog()) as catalog, \
            served(ordering_customers()) as customers, \
            served(ordering_shipping()) as shipping:
        yield {"catalog": catalog, "customers": customers, "shipping": shipping}


def place(ordering: Monolith, clients: dict[str, Any], urls: dict[str, str],
          customer: str, product: int, ship_via: int | None = None) -> Order:
    command = handlers.PlaceOrder(customer, (handlers.LineRequest(product, 12),),
                                  ship_via=ship_via)
    return handlers.place_order(command, ordering.unit_of_work("ordering"),
                                clients["catalog"](urls["catalog"]),
                                clients["customers"](urls["customers"]),
                                clients["shipping"](urls["shipping"]))


def test_ordering_prices_an_order_from_the_catalog_over_http(
    ordering: Monolith, clients: dict[str, Any],
) -> None:
    with providers() as urls:
        order = place(ordering, clients, urls, "ALFKI", 11)

    assert order.lines[0].unit_price == Decimal("14.00")
    assert order.total == Decimal("168.00")


def test_an_order_for_a_product_the_catalog_lacks_is_refused(
    ordering: Monolith, clients: dict[str, Any],
) -> None:
    with providers() as urls:
        with pytest.raises(UnknownProduct, match="99999"):
            place(ordering, clients, urls, "ALFKI", 99999)


def test_an_order_for_a_customer_nobody_registered_is_refused(
    ordering: Monolith, clients: dict[str, Any],
) -> None:
    with providers() as urls:
        with pytest.raises(UnknownCustomer, match="NOONE"):
            place(ordering, clients, urls, "NOONE", 11)


def test_an_order_with_a_shipper_shipping_knows_is_placed_over_http(
    ordering: Monolith, clients: dict[str, Any],
) -> None:
    with providers() as urls:
        order = place(ordering, clients, urls, "ALFKI", 11, ship_via=3)

    assert order.ship_via == 3


def test_an_order_with_a_shipper_nobody_registered_is_refused(
    ordering: Monolith, clients: dict[str, Any],
) -> None:
    with providers() as urls:
        with pytest.raises(UnknownShipper, match="shipper 99 is not registered"):
            place(ordering, clients, urls, "ALFKI", 11, ship_via=99)


def test_an_answer_the_contract_does_not_promise_is_an_outage(
    clients: dict[str, Any],
) -> None:
    with ordering_catalog().serve(addr="127.0.0.1", raises=False,
                                  verbose=False) as catalog:
        with pytest.raises(RemoteCallFailed,
                           match="/_api/catalog/prices answered 500"):
            clients["catalog"](str(catalog.url)).prices([12])
