"""Shipping's use cases."""

from __future__ import annotations

from monolith.ordering.events import OrderPlaced
from monolith.shipping.domain import Shipment, ShipmentNotFound, Shipper
from monolith.shipping.events import ShipmentDispatched
from monolith.shipping.ports import UnitOfWork


def plan_shipment(order: OrderPlaced, uow: UnitOfWork) -> None:
    """Every placed order gets one pending shipment; a repeat is a no-op."""
    with uow:
        if uow.shipments.get(order.order_id) is None:
            shipper = order.ship_via
            if shipper is not None and not uow.shipments.shipper_exists(shipper):
                shipper = None
            uow.shipments.add(Shipment(order.order_id, shipper, dict(order.ship_to)))
        uow.commit()


def dispatch(order_id: int, shipped_at: str, uow: UnitOfWork) -> None:
    with uow:
        shipment = uow.shipments.get(order_id)
        if shipment is None:
            raise ShipmentNotFound(order_id)

        shipment.dispatch(shipped_at)
        uow.shipments.save(shipment)
        uow.record(ShipmentDispatched(order_id, shipment.shipper_id, shipped_at))
        uow.commit()


def register_shippers(uow: UnitOfWork, shippers: list[Shipper]) -> None:
    with uow:
        for shipper in shippers:
            uow.shipments.add_shipper(shipper)
        uow.commit()


EVENT_HANDLERS = {
    OrderPlaced: plan_shipment,
}
