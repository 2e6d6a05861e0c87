"""What shipping announces."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from migrate.kernel.events import Event


@dataclasses.dataclass(frozen=True)
class ShipmentDispatched(Event):
    context: ClassVar[str] = "shipping"

    order_id: int
    shipper_id: int | None
    shipped_at: str

    @property
    def aggregate_id(self) -> str:
        return str(self.order_id)
