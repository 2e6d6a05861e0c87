"""Shipping and catalog extracted with no replica code of their own.

Both contexts declare their aggregates in the manifest and nothing else. One
story runs once for the module, with real processes: seed, up, extract both
into the workspace, follow the monolith's writes, move the writes, write on
the services, roll back; each test asserts one fact of it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from workspaces import system_environment

from migrate.extract.run import ExtractReport, extract
from migrate.hosts.service import ServiceHost
from migrate.kernel.events import Envelope
from migrate.kernel.images import IMAGE_EVENT
from migrate.kernel.sql import create_engine
from migrate.kernel.uow import queue_tables
from migrate.router.state import MONOLITH
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.settings import Settings
from migrate.sync.backfill import Parity, parity
from migrate.sync.flip import move_writes
from migrate.system import System
from monolith.catalog.domain import Product
from monolith.catalog.handlers import add_to_catalog
from monolith.catalog.tables import products
from monolith.host import Monolith
from monolith.shipping.handlers import dispatch
from monolith.shipping.tables import shipments

pytestmark = pytest.mark.e2e


@dataclasses.dataclass
class Story:
    extractions: dict[str, ExtractReport]
    followed_shipment: dict[str, Any]
    followed_product: dict[str, Any]
    read_at_full_weight: requests.Response
    writers_after_flip: dict[str, str]
    planned_by_service: dict[str, Any]
    product_added_by_service: dict[str, Any]
    writers_after_rollback: dict[str, str]
    after_rollback: dict[str, Any]
    parity_after_rollback: dict[str, Parity]


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


def _image_of(url: str, context: str, aggregate_id: str) -> dict[str, Any]:
    """The first image of an aggregate in a database's outbox."""
    outbox, _ = queue_tables(context)
    with create_engine(url).connect() as db:
        payload = db.scalars(
            sa.select(outbox.c.payload)
            .where(outbox.c.event_type == IMAGE_EVENT,
                   outbox.c.aggregate_id == aggregate_id)
            .order_by(outbox.c.position)
        ).first()
    assert payload is not None, f"no image of {context} {aggregate_id} at {url}"
    return dataclasses.asdict(Envelope.from_json(payload))


def _place_order(router: str) -> int:
    # The synthetic data set's first customer and product.
    placed = requests.post(
        f"{router}/orders",
        json={
            "customer_id": "QCBQY",
            "lines": [{"product_id": 1, "quantity": 2}],
            "ship_to": {"name": "Quick Stop", "city": "Lyon"},
        },
        timeout=30,
    )
    assert placed.status_code == 201, placed.text
    return int(placed.json()["order_id"])


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    env = system_environment(tmp_path_factory.mktemp("any"))
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
    seed(Monolith(settings.monolith_url), synthetic.generate(30))
    system.up()
    extractions = {name: extract(system, name) for name in ("shipping", "catalog")}
    system.up()
    router = settings.router_url
    monolith_url = settings.monolith_url
    shipping_url = settings.service_url("shipping")
    catalog_url = settings.service_url("catalog")
    monolith = Monolith(monolith_url)

    # The monolith writes; both services follow.
    followed = _place_order(router)
    dispatch(followed, "2026-12-05T10:00:00+00:00", monolith.unit_of_work("shipping"))
    add_to_catalog(monolith.unit_of_work("catalog"), [], [],
                   [Product(9001, "Rhubarb Jam", Decimal("7.25"), units_in_stock=4)])
    followed_shipment = _wait(
        "the dispatch reaching the shipping service",
        lambda: (_row(shipping_url, shipments, order_id=followed) or {}).get(
            "shipped_at") and _row(shipping_url, shipments, order_id=followed),
    )
    followed_product = _wait(
        "the new product reaching the catalog service",
        lambda: _row(catalog_url, products, product_id=9001),
    )
    system.state.set_weight("shipping", 100, "test", "every read")
    # The router picks a change up within its 200 ms poll.
    read = _wait(
        "the router sending shipping's reads to its service",
        lambda: next(
            (r for r in [requests.get(f"{router}/shipments/{followed}", timeout=30)]
             if r.headers.get("X-Migrate-Backend") != MONOLITH),
            None,
        ),
        timeout=10,
    )

    # The services write; the monolith follows.
    for name in ("shipping", "catalog"):
        move_writes(system, name)
    writers_after_flip = {n: s.writer for n, s in system.state.status().items()}
    after_flip = _place_order(router)
    _wait(
        "the shipping service planning the new order's shipment",
        lambda: _row(shipping_url, shipments, order_id=after_flip),
    )
    planned = _image_of(shipping_url, "shipping", str(after_flip))
    dispatch(after_flip, "2026-12-06T09:00:00+00:00",
             ServiceHost("shipping", shipping_url).unit_of_work())
    add_to_catalog(ServiceHost("catalog", catalog_url).unit_of_work(), [], [],
                   [Product(9002, "Quince Paste", Decimal("5.10"), units_in_stock=9)])
    _wait(
        "the monolith following the service's dispatch",
        lambda: (_row(monolith_url, shipments, order_id=after_flip) or {}).get(
            "shipped_at"),
    )
    added = _wait(
        "the monolith following the service's new product",
        lambda: _row(monolith_url, products, product_id=9002),
    )

    # Back to the monolith, with everything the services wrote.
    for name in ("shipping", "catalog"):
        move_writes(system, name, back=True)
    writers_after_rollback = {n: s.writer for n, s in system.state.status().items()}
    after_rollback = _place_order(router)
    _wait(
        "the shipping service following the monolith again",
        lambda: _row(shipping_url, shipments, order_id=after_rollback),
    )
    return Story(
        extractions,
        followed_shipment,
        followed_product,
        read,
        writers_after_flip,
        planned,
        added,
        writers_after_rollback,
        {
            "shipment": _row(monolith_url, shipments, order_id=after_flip),
            "product": _row(monolith_url, products, product_id=9002),
        },
        {
            name: parity(
                system.manifest.context(name),
                create_engine(monolith_url),
                create_engine(settings.service_url(name)),
            )
            for name in ("shipping", "catalog")
        },
    )


def test_each_copy_is_in_parity_when_extracted(story: Story) -> None:
    shipping = story.extractions["shipping"].parity
    catalog = story.extractions["catalog"].parity

    assert shipping.differences == [] and catalog.differences == []
    assert shipping.counts["shipments"] == (30, 30)
    assert catalog.counts["products"][0] > 0


def test_the_services_follow_the_monoliths_writes(story: Story) -> None:
    assert story.followed_shipment["shipped_at"] == "2026-12-05T10:00:00+00:00"
    assert story.followed_product["unit_price_cents"] == 725


def test_a_read_at_full_weight_is_answered_by_the_service(story: Story) -> None:
    assert story.read_at_full_weight.status_code == 200
    assert story.read_at_full_weight.headers["X-Migrate-Backend"] == "shipping"
    assert story.read_at_full_weight.json()["status"] == "shipped"


def test_the_write_flip_makes_each_service_its_contexts_writer(story: Story) -> None:
    assert story.writers_after_flip["shipping"] == "shipping"
    assert story.writers_after_flip["catalog"] == "catalog"


def test_after_the_flip_the_service_handles_the_events_its_context_consumes(
    story: Story,
) -> None:
    planned = story.planned_by_service

    assert planned["origin"] == "service"
    assert planned["data"]["root"]["ship_city"] == "Lyon"


def test_the_monolith_follows_what_the_services_write(story: Story) -> None:
    assert story.product_added_by_service["name"] == "Quince Paste"


def test_a_rollback_gives_the_writes_back_and_keeps_what_the_services_wrote(
    story: Story,
) -> None:
    assert set(story.writers_after_rollback.values()) == {MONOLITH}
    assert story.after_rollback["shipment"]["shipped_at"] == (
        "2026-12-06T09:00:00+00:00"
    )
    assert story.after_rollback["product"]["unit_price_cents"] == 510


def test_both_sides_agree_row_for_row_after_the_rollback(story: Story) -> None:
    for found in story.parity_after_rollback.values():
        assert found.differences == [], found.first_rows


def test_the_services_run_from_generated_hosts_only(story: Story) -> None:
    for report in story.extractions.values():
        folder: Path = report.extraction.folder
        assert (folder / f"{report.extraction.context}_service.py").exists()
        assert not list(folder.rglob("domain.py"))
