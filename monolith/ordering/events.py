"""What ordering announces. Consumers (billing, shipping) import this module
only; it carries what they need, so none of them calls ordering back."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any, ClassVar

from migrate.kernel import money
from migrate.kernel.events import Event


@dataclasses.dataclass(frozen=True)
class PlacedLine:
    product_id: int
    unit_price: Decimal
    quantity: int
    discount: Decimal


@dataclasses.dataclass(frozen=True)
class OrderPlaced(Event):
    context: ClassVar[str] = "ordering"

    order_id: int
    customer_id: str
    ordered_at: str
    freight: Decimal
    ship_via: int | None
    ship_to: dict[str, str | None]
    lines: tuple[PlacedLine, ...]

    @property
    def aggregate_id(self) -> str:
        return str(self.order_id)

    def data(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "ordered_at": self.ordered_at,
            "freight": money.text(self.freight),
            "ship_via": self.ship_via,
            "ship_to": dict(self.ship_to),
            "lines": [
                {
                    "product_id": line.product_id,
                    "unit_price": money.text(line.unit_price),
                    "quantity": line.quantity,
                    "discount": str(line.discount),
                }
                for line in self.lines
            ],
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> OrderPlaced:
        return cls(
            order_id=int(data["order_id"]),
            customer_id=data["customer_id"],
            ordered_at=data["ordered_at"],
            freight=Decimal(data["freight"]),
            ship_via=data.get("ship_via"),
            ship_to=dict(data.get("ship_to") or {}),
            lines=tuple(
                PlacedLine(
                    product_id=int(line["product_id"]),
                    unit_price=Decimal(line["unit_price"]),
                    quantity=int(line["quantity"]),
                    discount=Decimal(line["discount"]),
                )
                for line in data["lines"]
            ),
        )
