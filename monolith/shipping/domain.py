"""Shipments. Plain Python: no framework, no ORM, no vendor."""

from __future__ import annotations

import dataclasses


class ShippingError(Exception):
    """Root of the errors shipping's rules raise."""


class ShipmentNotFound(ShippingError):
    def __init__(self, order_id: int):
        super().__init__(f"no shipment for order {order_id}")
        self.order_id = order_id


class AlreadyDispatched(ShippingError):
    def __init__(self, order_id: int, shipped_at: str):
        super().__init__(f"the shipment of order {order_id} left on {shipped_at}")
        self.order_id = order_id


@dataclasses.dataclass(frozen=True)
class Shipper:
    shipper_id: int
    company_name: str
    phone: str | None = None


@dataclasses.dataclass
class Shipment:
    order_id: int
    shipper_id: int | None
    ship_to: dict[str, str | None]
    shipped_at: str | None = None

    @property
    def status(self) -> str:
        return "shipped" if self.shipped_at else "pending"

    def dispatch(self, shipped_at: str) -> None:
        if self.shipped_at:
            raise AlreadyDispatched(self.order_id, self.shipped_at)

        self.shipped_at = shipped_at
