"""Shipping's public surface."""

from __future__ import annotations

from typing import Any

from monolith.shipping.domain import ShipmentNotFound
from monolith.shipping.ports import UnitOfWork


def shipment(uow: UnitOfWork, order_id: int) -> dict[str, Any]:
    with uow:
        found = uow.shipments.get(order_id)
    if found is None:
        raise ShipmentNotFound(order_id)

    return {
        "order_id": found.order_id,
        "shipper_id": found.shipper_id,
        "status": found.status,
        "shipped_at": found.shipped_at,
        "ship_to": found.ship_to,
    }


def shipper_exists(uow: UnitOfWork, shipper_id: int) -> bool:
    """Whether shipping has the shipper registered, so an order may name it."""
    with uow:
        return uow.shipments.shipper_exists(shipper_id)
