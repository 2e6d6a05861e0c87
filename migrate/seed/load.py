"""Load a data set into the monolith through its contexts' own handlers.

Nothing is written behind a context's back: catalog, customers and shipping
take their reference data through their handlers, ordering imports the
historical orders, and the in-process dispatch of each `OrderPlaced` makes
billing issue the invoice and shipping plan the shipment, exactly as for a
new order. The events of history are then recorded as already published,
and as already handled by every side effect, so no relay sends them and no
historical invoice e-mail goes out: not from a function under `migrate up`,
nor from a standalone monolith catching up on its side effects.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

import sqlalchemy as sa

from migrate.kernel.uow import now, queue_tables
from migrate.seed import synthetic
from migrate.seed.dataset import Dataset
from migrate.seed.errors import SeedError
from monolith.billing.tables import invoices
from monolith.catalog import domain as catalog
from monolith.catalog.handlers import add_to_catalog
from monolith.customers import domain as customers
from monolith.customers.handlers import register_customers
from monolith.host import Monolith
from monolith.ordering import domain as ordering
from monolith.ordering.handlers import import_orders
from monolith.ordering.tables import orders as orders_table
from monolith.shipping import domain as shipping
from monolith.shipping.handlers import dispatch, register_shippers

BATCH = 200

Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class SeedReport:
    loaded: dict[str, int]
    skipped: dict[str, int]
    invoices: int
    events_marked_published: int


def seed_synthetic(
    host: Monolith, orders: int, progress: Progress | None = None
) -> SeedReport:
    """The manifest's seeder for `migrate seed --orders N`: a deterministic
    synthetic Northwind of N orders."""
    return seed(host, synthetic.generate(orders), progress)


def seed(host: Monolith, data: Dataset, progress: Progress | None = None) -> SeedReport:
    report = progress or (lambda step, done, total: None)
    _check_whole(data)
    if host.runs_side_effects:
        raise SeedError(
            "seed through a host that runs no side effects (Monolith(url)), or "
            "every historical invoice is e-mailed as it is loaded"
        )

    existing = _count(host, orders_table)
    if existing:
        raise SeedError(
            f"{host.database_url} already holds {existing} orders; seed an empty "
            "database (pass --reset to empty this one)"
        )

    add_to_catalog(
        host.unit_of_work("catalog"),
        [
            catalog.Category(c.category_id, c.name, c.description)
            for c in data.categories
        ],
        [
            catalog.Supplier(s.supplier_id, s.company_name, s.country)
            for s in data.suppliers
        ],
        [
            catalog.Product(
                p.product_id,
                p.name,
                p.unit_price,
                p.category_id,
                p.supplier_id,
                p.quantity_per_unit,
                p.units_in_stock,
                p.discontinued,
            )
            for p in data.products
        ],
    )
    register_customers(
        host.unit_of_work("customers"),
        [customers.Customer(**dataclasses.asdict(c)) for c in data.customers],
    )
    register_shippers(
        host.unit_of_work("shipping"),
        [
            shipping.Shipper(s.shipper_id, s.company_name, s.phone)
            for s in data.shippers
        ],
    )

    orders = _orders(data)
    for start in range(0, len(orders), BATCH):
        import_orders(orders[start : start + BATCH], host.unit_of_work("ordering"))
        report("orders", min(start + BATCH, len(orders)), len(orders))

    shipped = [(o.order_id, o.shipped_at) for o in data.orders if o.shipped_at]
    for n, (order_id, shipped_at) in enumerate(shipped, 1):
        dispatch(order_id, shipped_at, host.unit_of_work("shipping"))
        if n % BATCH == 0 or n == len(shipped):
            report("shipments", n, len(shipped))

    return SeedReport(
        loaded={
            "categories": len(data.categories),
            "suppliers": len(data.suppliers),
            "products": len(data.products),
            "customers": len(data.customers),
            "shippers": len(data.shippers),
            "orders": len(orders),
            "order lines": sum(len(o.lines) for o in orders),
        },
        skipped=dict(data.skipped),
        invoices=_count(host, invoices),
        events_marked_published=mark_history_published(host),
    )


def _check_whole(data: Dataset) -> None:
    """Refuse a data set that is cut short: no orders, or dangling references."""
    if not data.orders:
        raise SeedError("the data set holds no orders; is the dump complete?")

    products = {p.product_id for p in data.products}
    customers = {c.customer_id for c in data.customers}
    orders = {o.order_id for o in data.orders}
    for line in data.order_lines:
        if line.product_id not in products:
            raise SeedError(
                f"order {line.order_id} has a line for product {line.product_id}, "
                "which the data set does not hold; is the dump complete?"
            )
        if line.order_id not in orders:
            raise SeedError(
                f"a line refers to order {line.order_id}, which the "
                "data set does not hold; is the dump complete?"
            )
    for order in data.orders:
        if order.customer_id not in customers:
            raise SeedError(
                f"order {order.order_id} is for customer {order.customer_id!r}, "
                "whom the data set does not hold; is the dump complete?"
            )


def _orders(data: Dataset) -> list[ordering.Order]:
    lines: dict[int, list[ordering.OrderLine]] = defaultdict(list)
    for line in data.order_lines:
        lines[line.order_id].append(
            ordering.OrderLine(
                line.product_id, line.unit_price, line.quantity, Decimal(line.discount)
            )
        )
    return [
        ordering.Order(
            order_id=o.order_id,
            customer_id=o.customer_id,
            ordered_at=o.ordered_at,
            required_at=o.required_at,
            lines=lines[o.order_id],
            freight=o.freight,
            ship_via=o.ship_via,
            ship_to=ordering.ShipTo(
                o.ship_name,
                o.ship_address,
                o.ship_city,
                o.ship_region,
                o.ship_postal_code,
                o.ship_country,
            ),
        )
        for o in sorted(data.orders, key=lambda o: o.order_id)
    ]


def mark_history_published(host: Monolith) -> int:
    """Record every event in the hosted contexts' outboxes as published, so
    no relay sends history; how many that was."""
    marked = 0
    with host.engine.begin() as db:
        for name, context in host.hosted.items():
            outbox, inbox = queue_tables(name)
            marked += db.execute(
                outbox.update()
                .where(outbox.c.published_at.is_(None))
                .values(published_at=now())
            ).rowcount
            for effect in context.side_effects:
                history = db.scalars(
                    sa.select(outbox.c.event_id).where(
                        outbox.c.event_type == effect.on)
                ).all()
                if history:
                    db.execute(inbox.insert(), [
                        {"consumer": f"{name}.{effect.name}", "event_id": event_id,
                         "handled_at": now()}
                        for event_id in history
                    ])
    return marked


def _count(host: Monolith, table: sa.Table) -> int:
    with host.engine.connect() as db:
        return db.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0
