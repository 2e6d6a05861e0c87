"""Ordering's use cases."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from migrate.kernel.uow import now
from monolith.ordering.domain import (
    MAX_LINES,
    InvalidOrder,
    Order,
    OrderLine,
    ShipTo,
    UnknownCustomer,
    UnknownProduct,
    UnknownShipper,
)
from monolith.ordering.events import OrderPlaced, PlacedLine
from monolith.ordering.ports import Catalog, Customers, Shipping, UnitOfWork


@dataclasses.dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int
    discount: Decimal = Decimal("0")


@dataclasses.dataclass(frozen=True)
class PlaceOrder:
    customer_id: str
    lines: tuple[LineRequest, ...]
    freight: Decimal = Decimal("0.00")
    ship_via: int | None = None
    ship_to: ShipTo = ShipTo()


def place_order(
    command: PlaceOrder,
    uow: UnitOfWork,
    catalog: Catalog,
    customers: Customers,
    shipping: Shipping,
) -> Order:
    """Check the customer and the shipper, price the lines from the catalog,
    store the order, announce it."""
    if not command.lines:
        raise InvalidOrder("an order needs at least one line")

    if len(command.lines) > MAX_LINES:
        raise InvalidOrder(
            f"an order of {len(command.lines)} lines: an order has at most {MAX_LINES}"
        )

    if not customers.exists(command.customer_id):
        raise UnknownCustomer(command.customer_id)

    shipper = command.ship_via
    if shipper is not None and not shipping.shipper_exists(shipper):
        raise UnknownShipper(shipper)

    prices = catalog.prices([line.product_id for line in command.lines])
    unknown = next(
        (ln.product_id for ln in command.lines if ln.product_id not in prices), None
    )
    if unknown is not None:
        raise UnknownProduct(unknown)

    lines = [
        OrderLine(ln.product_id, prices[ln.product_id], ln.quantity, ln.discount)
        for ln in command.lines
    ]
    with uow:
        order = Order(
            order_id=uow.orders.next_id(),
            customer_id=command.customer_id,
            ordered_at=now(),
            lines=lines,
            freight=command.freight,
            ship_via=command.ship_via,
            ship_to=command.ship_to,
        )
        uow.orders.add(order)
        uow.record(placed(order))
        uow.commit()
    return order


def import_orders(orders: list[Order], uow: UnitOfWork) -> None:
    """Take in historical orders as they were placed, announcing each."""
    with uow:
        for order in orders:
            uow.orders.add(order)
            uow.record(placed(order))
        if orders:
            uow.orders.move_next_id_past(max(o.order_id for o in orders))
        uow.commit()


def placed(order: Order) -> OrderPlaced:
    return OrderPlaced(
        order_id=order.order_id,
        customer_id=order.customer_id,
        ordered_at=order.ordered_at,
        freight=order.freight,
        ship_via=order.ship_via,
        ship_to=dataclasses.asdict(order.ship_to),
        lines=tuple(
            PlacedLine(ln.product_id, ln.unit_price, ln.quantity, ln.discount)
            for ln in order.lines
        ),
    )
