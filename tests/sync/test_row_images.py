"""Row images of declared aggregates: recorded by commands, applied by replicas.

A context with no replica code of its own (shipping, ordering) is followed
through the images its unit of work records at commit; a replica keeps the
newest whatever the order, records nothing of its own, and a write flip
hands the writer's versions over.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrate.extract.schema import service_metadata
from migrate.hosts.replica import adopt_versions, settle_removals
from migrate.hosts.service import ServiceHost
from migrate.kernel.events import Envelope
from migrate.kernel.images import IMAGE_EVENT, ImageError
from migrate.kernel.sql import VERSIONS, create_engine
from migrate.kernel.uow import queue_tables
from migrate.manifest import load
from migrate.schema import upgrade
from monolith.host import Monolith
from monolith.ordering import handlers as ordering
from monolith.ordering.domain import Order, OrderLine
from monolith.shipping import handlers as shipping
from monolith.shipping.domain import Shipper
from monolith.shipping.events import ShipmentDispatched
from monolith.shipping.tables import shipments, shippers


@pytest.fixture
def monolith(database_url: str) -> Monolith:
    upgrade(database_url)
    host = Monolith(database_url)
    shipping.register_shippers(
        host.unit_of_work("shipping"), [Shipper(1, "Speedy Express", "(503) 555-9831")]
    )
    return host


@pytest.fixture
def service(tmp_path: Path) -> ServiceHost:
    url = f"sqlite:///{tmp_path / 'shipping.db'}"
    engine = create_engine(url)
    for metadata in service_metadata("shipping"):
        metadata.create_all(engine)
    return ServiceHost("shipping", url)


def images(host: Monolith | ServiceHost, context: str) -> list[Envelope]:
    outbox, _ = queue_tables(context)
    with host.engine.connect() as db:
        payloads = db.scalars(
            sa.select(outbox.c.payload)
            .where(outbox.c.event_type == IMAGE_EVENT)
            .order_by(outbox.c.position)
        ).all()
    return [Envelope.from_json(p) for p in payloads]


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as db:
        return int(db.execute(sa.select(sa.func.count()).select_from(table)).scalar())


def plan(host: Monolith, order_id: int) -> None:
    """What an `OrderPlaced` makes shipping do in the monolith."""
    shipping.plan_shipment(
        _placed(order_id), host.unit_of_work("shipping", claim=("t", str(order_id)))
    )


def _placed(order_id: int):  # type: ignore[no-untyped-def]
    from monolith.ordering.events import OrderPlaced

    return OrderPlaced(order_id, "ALFKI", "2026-12-01", Decimal("1.00"), 1,
                       {"name": "Alfreds", "city": "Berlin"}, ())


def test_a_command_records_its_aggregate_whole_with_a_version(
    monolith: Monolith,
) -> None:
    plan(monolith, 10248)

    shipment = images(monolith, "shipping")[-1]
    assert (shipment.data["aggregate"], shipment.data["key"]) == ("shipment", [10248])
    assert shipment.data["version"] == 1
    assert shipment.data["root"]["ship_city"] == "Berlin"
    assert shipment.aggregate_id == "10248"
    assert shipment.origin == "monolith"


def test_a_root_and_its_children_travel_in_one_image(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ordering.db'}"
    upgrade(url)
    host = Monolith(url)
    order = Order(
        order_id=7, customer_id="ALFKI", ordered_at="2026-12-01",
        lines=[OrderLine(11, Decimal("14.00"), 12, Decimal("0")),
               OrderLine(42, Decimal("9.80"), 10, Decimal("0.05"))],
    )

    ordering.import_orders([order], host.unit_of_work("ordering"))

    by_aggregate = {e.data["aggregate"]: e.data for e in images(host, "ordering")}
    lines = by_aggregate["order"]["children"]["order_lines"]
    assert [ln["product_id"] for ln in lines] == [11, 42]
    assert by_aggregate["order"]["root"]["customer_id"] == "ALFKI"
    assert by_aggregate["order_number"]["root"]["next_order_id"] == 8


def test_an_update_is_found_by_its_where_clause_and_bumps_the_version(
    monolith: Monolith,
) -> None:
    plan(monolith, 10248)
    plan(monolith, 10249)

    with monolith.unit_of_work("shipping") as uow:
        uow.connection.execute(
            shipments.update()
            .where(shipments.c.ship_city == "Berlin")
            .values(ship_city="Bern")
        )
        uow.commit()

    changed = images(monolith, "shipping")[-2:]
    assert [(e.data["key"], e.data["version"]) for e in changed] == [
        ([10248], 2),
        ([10249], 2),
    ]
    assert {e.data["root"]["ship_city"] for e in changed} == {"Bern"}


def test_a_query_records_nothing(monolith: Monolith) -> None:
    plan(monolith, 10248)
    before = len(images(monolith, "shipping"))

    with monolith.unit_of_work("shipping", command=False) as uow:
        uow.shipments.get(10248)
        uow.commit()

    assert len(images(monolith, "shipping")) == before


def test_a_replica_keeps_the_newest_image_whatever_the_order(
    monolith: Monolith, service: ServiceHost
) -> None:
    plan(monolith, 10248)
    shipping.dispatch(10248, "2026-12-02", monolith.unit_of_work("shipping"))
    shipper, planned, dispatched = images(monolith, "shipping")
    service.follow(shipper)

    assert service.follow(dispatched) is True
    assert service.follow(planned) is False

    with service.engine.connect() as db:
        row = db.execute(sa.select(shipments)).one()
    assert row.shipped_at == "2026-12-02"


def test_a_replica_claims_domain_events_and_changes_nothing_for_them(
    monolith: Monolith, service: ServiceHost
) -> None:
    event = Envelope.wrap(ShipmentDispatched(10248, 1, "2026-12-02"), "monolith")

    assert service.follow(event) is False

    _, inbox = queue_tables("shipping")
    with service.engine.connect() as db:
        claimed = db.scalars(sa.select(inbox.c.event_id)).all()
        held = db.execute(sa.select(sa.func.count()).select_from(shipments)).scalar()
    assert (claimed, held) == ([event.event_id], 0)


def test_what_a_replica_applies_records_no_image_of_its_own(
    monolith: Monolith, service: ServiceHost
) -> None:
    for envelope in images(monolith, "shipping"):
        service.follow(envelope)

    assert images(service, "shipping") == []
    with service.engine.connect() as db:
        assert db.execute(sa.select(shippers.c.company_name)).scalar() == (
            "Speedy Express"
        )


def test_a_removal_reaches_the_replica_and_settles_a_late_copy(
    monolith: Monolith, service: ServiceHost
) -> None:
    plan(monolith, 10248)
    for envelope in images(monolith, "shipping"):
        service.follow(envelope)
    with monolith.unit_of_work("shipping") as uow:
        uow.connection.execute(shipments.delete().where(shipments.c.order_id == 10248))
        uow.commit()
    removal = images(monolith, "shipping")[-1]

    service.follow(removal)
    with service.engine.begin() as db:
        # A backfill that read the row before its removal copies it anyway.
        db.execute(shipments.insert().values(order_id=10248, shipper_id=1))
    settled = settle_removals(load().context("shipping"), service.engine)

    assert removal.data["root"] is None
    assert settled == 1
    assert _count(service.engine, shipments) == 0


def test_the_side_about_to_write_adopts_the_writers_versions(
    monolith: Monolith, service: ServiceHost
) -> None:
    plan(monolith, 10248)
    shipping.dispatch(10248, "2026-12-02", monolith.unit_of_work("shipping"))
    with service.engine.begin() as db:
        # Copied by a backfill, which carries no versions.
        db.execute(shippers.insert().values(shipper_id=1, company_name="Speedy"))
        db.execute(shipments.insert().values(order_id=10248, shipper_id=1))

    adopted = adopt_versions("shipping", monolith.engine, service.engine)
    with service.unit_of_work() as uow:
        uow.connection.execute(
            shipments.update().where(shipments.c.order_id == 10248)
            .values(shipped_at="2026-12-03")
        )
        uow.commit()

    assert adopted == 2
    (change,) = images(service, "shipping")
    assert change.data["version"] == 3
    assert change.origin == "service"


def test_an_insert_from_a_select_is_refused_naming_the_table(
    monolith: Monolith,
) -> None:
    copy = sa.select(sa.literal(10300), shippers.c.shipper_id)

    with pytest.raises(ImageError, match="INSERT ... SELECT into shipments"):
        with monolith.unit_of_work("shipping") as uow:
            uow.connection.execute(
                shipments.insert().from_select(["order_id", "shipper_id"], copy)
            )

    assert _count(monolith.engine, shipments) == 0


def test_versions_are_kept_per_aggregate_and_key(monolith: Monolith) -> None:
    plan(monolith, 10248)
    shipping.dispatch(10248, "2026-12-02", monolith.unit_of_work("shipping"))

    with monolith.engine.connect() as db:
        held = db.execute(
            sa.select(VERSIONS.c.aggregate, VERSIONS.c.aggregate_key,
                      VERSIONS.c.version).order_by(VERSIONS.c.aggregate)
        ).all()

    assert [tuple(r) for r in held] == [
        ("shipment", "[10248]", 2),
        ("shipper", "[1]", 1),
    ]


@dataclasses.dataclass(frozen=True)
class _Spec:
    name: str
    root: str
    key: tuple[str, ...]
    children: tuple[str, ...] = ()


def test_a_child_without_a_foreign_key_onto_its_root_is_refused() -> None:
    from migrate.kernel.images import build_aggregates
    from monolith.shipping.tables import metadata

    with pytest.raises(ImageError, match="child table shipments has no foreign key"):
        build_aggregates(
            "shipping", metadata, [_Spec("shipper", "shippers", ("phone",),
                                         ("shipments",))]
        )
