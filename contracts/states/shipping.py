"""Provider states of shipping: shipments that left the warehouse.

Shipping is hosted by the monolith only. A shipment exists because ordering
took an order and shipping planned its shipment when the order was
announced; it leaves through shipping's own `dispatch` handler.
"""

from __future__ import annotations

from decimal import Decimal

from contracts.states.catalog import product_in_catalog
from contracts.states.customers import customer_registered
from migrate.contracts.stages import MonolithStage
from migrate.contracts.states import MONOLITH, ProviderStates
from migrate.kernel.uow import now
from monolith.ordering import handlers as ordering
from monolith.shipping import handlers as shipping
from monolith.shipping.domain import Shipper

STATES = ProviderStates("shipping")


@STATES.given("a shipment was dispatched", on=(MONOLITH,))
def shipment_dispatched(stage: MonolithStage, customer_id: str,
                        shipper_id: int) -> None:
    ports = stage.ports("shipping")
    with ports.query() as uow:
        known = uow.shipments.shipper_exists(shipper_id)
    if not known:
        shipping.register_shippers(ports.command(),
                                   [Shipper(shipper_id, "Federal Shipping")])
    customer_registered(stage, customer_id)
    product_in_catalog(stage, 11, "14.00")
    orders = stage.ports("ordering")
    command = ordering.PlaceOrder(
        customer_id=customer_id,
        lines=(ordering.LineRequest(11, 12, Decimal("0")),),
        ship_via=shipper_id,
    )
    order = ordering.place_order(command, orders.command(), orders.catalog,
                                 orders.customers)
    shipping.dispatch(order.order_id, now(), ports.command())
