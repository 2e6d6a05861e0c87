"""Ordering extracted: its handlers call catalog, customers and shipping
over HTTP.

Once ordering's writes moved to its service, an order placed through the
router is placed by the service, which prices it from catalog and checks
its customer and its shipper through the clients `migrate extract`
generated (their calls go through the router to the monolith, which still
hosts all three); billing and shipping, still in the monolith, receive the
service's `OrderPlaced` from their queues and invoice the order and plan
its shipment. One story runs once for the module; each test asserts one
fact of it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from workspaces import system_environment

from migrate.extract.run import ExtractReport, extract
from migrate.kernel.sql import create_engine
from migrate.kernel.uow import queue_tables
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.settings import Settings
from migrate.sync.flip import move_writes
from migrate.system import System
from monolith.billing.tables import invoices
from monolith.catalog.domain import Product
from monolith.catalog.handlers import add_to_catalog
from monolith.customers.domain import Customer
from monolith.customers.handlers import register_customers
from monolith.host import Monolith
from monolith.ordering.tables import orders
from monolith.shipping.tables import shipments

pytestmark = pytest.mark.e2e


@dataclasses.dataclass
class Story:
    extraction: ExtractReport
    clients: str
    placed: requests.Response
    unknown_customer: requests.Response
    unknown_product: requests.Response
    unknown_shipper: requests.Response
    stored_around_unknown_shipper: tuple[dict[str, int], dict[str, int]]
    invoice: dict[str, Any]
    shipment: dict[str, Any]
    handled_by: set[str]
    followed: dict[str, Any] | None


def _wait(what: str, found: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout:g} s")


def _row(url: str, table: sa.Table, **key: Any) -> dict[str, Any] | None:
    where = [table.c[name] == value for name, value in key.items()]
    with create_engine(url).connect() as db:
        row = db.execute(sa.select(table).where(*where)).first()
    return None if row is None else dict(row._mapping)


def _order(router: str, customer: str, product: int,
           ship_via: int | None = None) -> requests.Response:
    return requests.post(
        f"{router}/orders",
        json={
            "customer_id": customer,
            "lines": [{"product_id": product, "quantity": 3, "discount": "0.10"}],
            "freight": "4.50",
            "ship_via": ship_via,
            "ship_to": {"name": "Lazy K Kountry Store", "city": "Walla Walla"},
        },
        timeout=60,
    )


def _stored(url: str) -> dict[str, int]:
    """How many orders, and rows of ordering's outbox, a database holds."""
    outbox, _ = queue_tables("ordering")
    tables = {"orders": orders, "ordering_outbox": outbox}
    with create_engine(url).connect() as db:
        return {
            name: db.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for name, t in tables.items()
        }


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    env = system_environment(tmp_path_factory.mktemp("ordering"))
    env["MIGRATE_VISIBILITY_SECONDS"] = "5"
    system = System(Settings.from_env(env))
    try:
        yield _tell(system)
    finally:
        system.down()


def _tell(system: System) -> Story:
    settings = system.settings
    settings.home.mkdir(parents=True)
    upgrade(settings.monolith_url)
    seed(Monolith(settings.monolith_url), synthetic.generate(20))
    system.up()
    extraction = extract(system, "ordering")
    system.up()
    monolith = Monolith(settings.monolith_url)
    router = settings.router_url

    # Written in the monolith after the extraction: the ordering service can
    # only know them by asking catalog and customers.
    add_to_catalog(monolith.unit_of_work("catalog"), [], [],
                   [Product(9100, "Gravad Lax", Decimal("26.00"), units_in_stock=8)])
    register_customers(monolith.unit_of_work("customers"),
                       [Customer("LAZYK", "Lazy K Kountry Store")])
    move_writes(system, "ordering")

    # Shipper 2 is one of the data set's: the service can only know it by
    # asking shipping, whose tables it does not hold.
    placed = _order(router, "LAZYK", 9100, ship_via=2)
    assert placed.status_code == 201, placed.text
    order_id = int(placed.json()["order_id"])
    monolith_url = settings.monolith_url
    invoice = _wait("the monolith invoicing the service's order",
                    lambda: _row(monolith_url, invoices, invoice_id=order_id))
    shipment = _wait("the monolith planning the service's order's shipment",
                     lambda: _row(monolith_url, shipments, order_id=order_id))
    followed = _wait("the monolith's ordering replica following the order",
                     lambda: _row(monolith_url, orders, order_id=order_id))
    service_url = settings.service_url("ordering")
    before_unknown_shipper = _stored(service_url)
    unknown_shipper = _order(router, "LAZYK", 9100, ship_via=99)
    after_unknown_shipper = _stored(service_url)
    return Story(
        extraction=extraction,
        clients=(extraction.extraction.folder / "ordering_clients.py").read_text(),
        placed=placed,
        unknown_customer=_order(router, "NOONE", 9100),
        unknown_product=_order(router, "LAZYK", 99999),
        unknown_shipper=unknown_shipper,
        stored_around_unknown_shipper=(before_unknown_shipper,
                                       after_unknown_shipper),
        invoice=invoice,
        shipment=shipment,
        handled_by=_handlers_of(system, order_id),
        followed=followed,
    )


def _handlers_of(system: System, order_id: int) -> set[str]:
    """The monolith's consumers that claimed the service's OrderPlaced."""
    outbox, _ = queue_tables("ordering")
    with create_engine(system.settings.service_url("ordering")).connect() as db:
        event_id = db.scalars(
            sa.select(outbox.c.event_id).where(
                outbox.c.event_type == "OrderPlaced",
                outbox.c.aggregate_id == str(order_id),
            )
        ).one()
    claimed: set[str] = set()
    with create_engine(system.settings.monolith_url).connect() as db:
        for context in ("billing", "shipping"):
            _, inbox = queue_tables(context)
            claimed |= set(db.scalars(
                sa.select(inbox.c.consumer).where(inbox.c.event_id == event_id)
            ))
    return claimed


def test_ordering_is_extracted_in_parity(story: Story) -> None:
    parity = story.extraction.parity

    assert parity.differences == []
    assert parity.counts["orders"] == (20, 20)


def test_extraction_generates_a_client_per_port_from_its_protocol(
    story: Story,
) -> None:
    assert "class CatalogClient(ApiClient):" in story.clients
    assert "def prices(self, product_ids: list[int]) -> dict[int, Decimal]:" in (
        story.clients
    )
    assert "def exists(self, customer_id: str) -> bool:" in story.clients
    assert "class ShippingClient(ApiClient):" in story.clients
    assert "def shipper_exists(self, shipper_id: int) -> bool:" in story.clients


def test_the_service_places_the_order_priced_by_catalog_over_http(
    story: Story,
) -> None:
    order = story.placed.json()

    assert story.placed.headers["X-Migrate-Backend"] == "ordering"
    assert order["lines"][0]["unit_price"] == "26.00"
    assert order["total"] == "74.70"


def test_a_customer_that_customers_does_not_know_is_refused(story: Story) -> None:
    assert story.unknown_customer.status_code == 422
    assert story.unknown_customer.json()["error"] == "unknown_customer"


def test_a_product_that_catalog_does_not_know_is_refused(story: Story) -> None:
    assert story.unknown_product.status_code == 422
    assert story.unknown_product.json()["error"] == "unknown_product"


def test_a_shipper_that_shipping_does_not_know_is_refused_naming_it(
    story: Story,
) -> None:
    assert story.unknown_shipper.status_code == 422
    assert story.unknown_shipper.headers["X-Migrate-Backend"] == "ordering"
    assert story.unknown_shipper.json() == {
        "error": "unknown_shipper", "message": "shipper 99 is not registered"}


def test_a_refused_shipper_leaves_no_order_and_no_event_on_the_service(
    story: Story,
) -> None:
    before, after = story.stored_around_unknown_shipper

    assert after == before


def test_the_monolith_invoices_the_services_order(story: Story) -> None:
    # 3 x 26.00 less 10 %, and 4.50 of freight.
    assert story.invoice["total_cents"] == 7470


def test_the_monolith_plans_the_services_orders_shipment(story: Story) -> None:
    assert story.shipment["ship_city"] == "Walla Walla"


def test_the_monolith_plans_the_services_orders_shipment_with_its_shipper(
    story: Story,
) -> None:
    assert story.shipment["shipper_id"] == 2


def test_the_monolith_consumed_the_services_event_from_its_queues(
    story: Story,
) -> None:
    assert story.handled_by == {"billing.issue_invoice", "shipping.plan_shipment"}


def test_the_monolith_follows_the_order_the_service_wrote(story: Story) -> None:
    assert story.followed is not None
    assert story.followed["customer_id"] == "LAZYK"
