"""Shipping's repository and unit of work on SQLAlchemy Core."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.kernel.uow import UnitOfWork
from monolith.shipping.domain import Shipment, Shipper
from monolith.shipping.tables import shipments, shippers

_ADDRESS = ("name", "address", "city", "region", "postal_code", "country")


class SqlShipments:
    def __init__(self, connection: Connection):
        self._db = connection

    def get(self, order_id: int) -> Shipment | None:
        row = self._db.execute(
            sa.select(shipments).where(shipments.c.order_id == order_id)
        ).first()
        if row is None:
            return None

        ship_to = {part: getattr(row, f"ship_{part}") for part in _ADDRESS}
        return Shipment(row.order_id, row.shipper_id, ship_to, row.shipped_at)

    def add(self, shipment: Shipment) -> None:
        self._db.execute(shipments.insert().values(**_row(shipment)))

    def save(self, shipment: Shipment) -> None:
        self._db.execute(
            shipments.update()
            .where(shipments.c.order_id == shipment.order_id)
            .values(**_row(shipment))
        )

    def add_shipper(self, shipper: Shipper) -> None:
        self._db.execute(shippers.insert().values(**dataclasses.asdict(shipper)))

    def shipper_exists(self, shipper_id: int) -> bool:
        found = self._db.execute(
            sa.select(shippers.c.shipper_id).where(shippers.c.shipper_id == shipper_id)
        ).first()
        return found is not None


def _row(shipment: Shipment) -> dict[str, object]:
    row: dict[str, object] = {
        "order_id": shipment.order_id,
        "shipper_id": shipment.shipper_id,
        "shipped_at": shipment.shipped_at,
    }
    row.update({f"ship_{part}": shipment.ship_to.get(part) for part in _ADDRESS})
    return row


class ShippingUnitOfWork(UnitOfWork):
    context = "shipping"

    def __enter__(self) -> ShippingUnitOfWork:
        super().__enter__()
        self.shipments = SqlShipments(self.connection)
        return self
