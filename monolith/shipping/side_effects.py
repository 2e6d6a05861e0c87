"""Shipping's slow side effects, each safe to run twice: the port delivers
once per business key.

- `shipment_notification`: tells the customer that an order left, keyed
  `shipment-<order id>` (an order ships once).
"""

from __future__ import annotations

from typing import Any

from monolith.shipping.ports import Mailbox


def shipment_notification(shipment: dict[str, Any], mailbox: Mailbox) -> bool:
    """Announce a dispatched shipment; False when it was announced before."""
    order_id = shipment["order_id"]
    carrier = (
        f"shipper {shipment['shipper_id']}"
        if shipment.get("shipper_id") is not None
        else "our own van"
    )
    message = (
        f"To: the customer of order {order_id}\n"
        f"Subject: Northwind order {order_id} is on its way\n"
        "\n"
        f"Order {order_id} left our warehouse on {shipment['shipped_at']} "
        f"with {carrier}.\n"
    )
    return mailbox.deliver(f"shipment-{order_id}", message)
