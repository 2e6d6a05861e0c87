"""Ordering's public surface: orders as everyone outside ordering sees them."""

from __future__ import annotations

import dataclasses
from typing import Any

from migrate.kernel import money
from monolith.ordering.domain import Order, OrderNotFound
from monolith.ordering.ports import UnitOfWork


def order_view(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "ordered_at": order.ordered_at,
        "required_at": order.required_at,
        "ship_via": order.ship_via,
        "ship_to": dataclasses.asdict(order.ship_to),
        "freight": money.text(order.freight),
        "total": money.text(order.total),
        "lines": [
            {
                "product_id": line.product_id,
                "unit_price": money.text(line.unit_price),
                "quantity": line.quantity,
                "discount": str(line.discount),
                "amount": money.text(line.amount),
            }
            for line in order.lines
        ],
    }


def order(uow: UnitOfWork, order_id: int) -> dict[str, Any]:
    with uow:
        found = uow.orders.get(order_id)
    if found is None:
        raise OrderNotFound(order_id)

    return order_view(found)
