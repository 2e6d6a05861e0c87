"""Provider states of shipping: the shippers it knows, and shipments that
left the warehouse.

A shipper registers through shipping's own handler on whichever host writes
shipping for the block (the stage makes a replica service the writer for
it). On the monolith a shipment exists because ordering took an order and
shipping planned its shipment when the order was announced. On shipping's
service, where no ordering places orders, it is delivered the
`OrderPlaced` and plans the shipment itself. Either way the shipment
leaves through shipping's own `dispatch` handler. A shipment with an order
number of its own is planned from a delivered `OrderPlaced` on either host.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from contracts.states.catalog import product_in_catalog
from contracts.states.customers import customer_registered
from migrate.contracts.stages import MonolithStage, ServiceStage, Stage
from migrate.contracts.states import MONOLITH, SERVICE, ProviderStates
from migrate.kernel.uow import now
from monolith.ordering import handlers as ordering
from monolith.ordering.events import OrderPlaced
from monolith.shipping import handlers as shipping
from monolith.shipping.api import shipment, shipper_exists
from monolith.shipping.domain import ShipmentNotFound, Shipper

STATES = ProviderStates("shipping")


@STATES.given("a shipper is registered")
def shipper_registered(stage: Stage, shipper_id: int,
                       company_name: str = "Federal Shipping") -> None:
    ports = stage.ports("shipping")
    if shipper_exists(ports.query(), shipper_id):
        return

    with stage.writing("shipping"):
        shipping.register_shippers(ports.command(),
                                   [Shipper(shipper_id, company_name)])


@STATES.given("no shipper has the id")
def no_such_shipper(stage: Stage, shipper_id: int) -> None:
    if shipper_exists(stage.ports("shipping").query(), shipper_id):
        raise RuntimeError(f"shipper {shipper_id} is registered")


@STATES.given("a shipment was dispatched", on=(MONOLITH,))
def shipment_dispatched(stage: MonolithStage, customer_id: str,
                        shipper_id: int) -> None:
    ports = stage.ports("shipping")
    shipper_registered(stage, shipper_id)
    customer_registered(stage, customer_id)
    product_in_catalog(stage, 11, "14.00")
    orders = stage.ports("ordering")
    command = ordering.PlaceOrder(
        customer_id=customer_id,
        lines=(ordering.LineRequest(11, 12, Decimal("0")),),
        ship_via=shipper_id,
    )
    order = ordering.place_order(command, orders.command(), orders.catalog,
                                 orders.customers, orders.shipping)
    shipping.dispatch(order.order_id, now(), ports.command())


@STATES.given("a shipment was dispatched", on=(SERVICE,))
def shipment_dispatched_on_service(stage: ServiceStage, customer_id: str,
                                   shipper_id: int) -> None:
    ports = stage.ports("shipping")
    _plan_and_dispatch(stage, ports, _unplanned_order_id(ports), customer_id,
                       shipper_id)


@STATES.given("an order's shipment was dispatched")
def order_shipment_dispatched(stage: Stage, order_id: int, shipper_id: int,
                              customer_id: str = "VINET") -> None:
    ports = stage.ports("shipping")
    found = _found(ports, order_id)
    if found and found["status"] == "shipped":
        return

    if found:
        # Planned from an order another state took: its shipper and its
        # dispatch are not this state's to decide.
        raise RuntimeError(f"order {order_id} has a shipment of another state "
                           f"({found['status']}); give this state an order of "
                           "its own")

    _plan_and_dispatch(stage, ports, order_id, customer_id, shipper_id)


def _plan_and_dispatch(stage: Stage, ports: Any, order_id: int, customer_id: str,
                       shipper_id: int) -> None:
    """A shipment planned from a delivered `OrderPlaced` and dispatched, as
    the host that writes shipping."""
    with stage.writing("shipping"):
        shipper_registered(stage, shipper_id)
        stage.deliver("shipping", OrderPlaced(
            order_id, customer_id, now(), Decimal("0.00"), shipper_id,
            {"city": "Reims"}, (),
        ))
        shipping.dispatch(order_id, now(), ports.command())


@STATES.given("no shipment has the id")
def no_such_shipment(stage: Stage, order_id: int) -> None:
    if _found(stage.ports("shipping"), order_id) is not None:
        raise RuntimeError(f"order {order_id} has a shipment")


def _found(ports: Any, order_id: int) -> dict[str, Any] | None:
    try:
        return shipment(ports.query(), order_id)
    except ShipmentNotFound:
        return None


def _unplanned_order_id(ports: Any) -> int:
    """An order number no shipment of this database has."""
    order_id = 20_000
    with ports.query() as uow:
        while uow.shipments.get(order_id) is not None:
            order_id += 1
    return order_id
