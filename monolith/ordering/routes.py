"""Ordering's HTTP routes."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from migrate.kernel import money
from migrate.kernel.http import InvalidRequest, Reply, Request, Route, require
from monolith.ordering import api, handlers
from monolith.ordering.domain import (
    InvalidOrder,
    OrderNotFound,
    ShipTo,
    UnknownCustomer,
    UnknownProduct,
    UnknownShipper,
)
from monolith.ordering.ports import Ports


def place_order(ports: Ports, request: Request) -> Reply:
    command = _place_order_command(request.body)

    order = handlers.place_order(
        command, ports.command(), ports.catalog, ports.customers, ports.shipping
    )

    return Reply(201, api.order_view(order), {"Location": f"/orders/{order.order_id}"})


def get_order(ports: Ports, request: Request) -> Reply:
    return Reply(200, api.order(ports.query(), request.params["order_id"]))


def _place_order_command(body: Mapping[str, Any]) -> handlers.PlaceOrder:
    customer_id = require(body, "customer_id", str)
    raw_lines = require(body, "lines", list)
    lines = []
    for n, raw in enumerate(raw_lines):
        if not isinstance(raw, dict):
            raise InvalidRequest(f"lines[{n}] is {raw!r}; it must be an object")
        lines.append(
            handlers.LineRequest(
                product_id=require(raw, "product_id", int),
                quantity=require(raw, "quantity", int),
                discount=_discount(raw.get("discount", "0"), n),
            )
        )
    ship_to = body.get("ship_to") or {}
    if not isinstance(ship_to, dict):
        raise InvalidRequest(f"field 'ship_to' is {ship_to!r}; it must be an object")

    ship_via = body.get("ship_via")
    if ship_via is not None and require(body, "ship_via", int) < 1:
        raise InvalidRequest(
            f"field 'ship_via' is {ship_via}; a shipper's id is 1 or more"
        )

    return handlers.PlaceOrder(
        customer_id=customer_id,
        lines=tuple(lines),
        freight=money.parse(body.get("freight", "0.00"), "freight"),
        ship_via=ship_via,
        ship_to=ShipTo(**{k: ship_to.get(k) for k in ShipTo.__dataclass_fields__}),
    )


def _discount(raw: object, n: int) -> Decimal:
    try:
        discount = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidRequest(
            f"lines[{n}].discount is {raw!r}; it must be a number"
        ) from None

    if not discount.is_finite():
        raise InvalidRequest(
            f"lines[{n}].discount is {raw!r}; it must be a number"
        )

    if discount != discount.quantize(Decimal("0.01")):
        raise InvalidRequest(
            f"lines[{n}].discount is {raw!r}; use hundredths such as 0.15"
        )

    return discount


ROUTES = [
    Route("POST", "/orders", place_order),
    Route("GET", "/orders/<int:order_id>", get_order, bucket_key="order_id"),
]

ERRORS: dict[type[Exception], tuple[int, str]] = {
    OrderNotFound: (404, "order_not_found"),
    UnknownProduct: (422, "unknown_product"),
    UnknownCustomer: (422, "unknown_customer"),
    UnknownShipper: (422, "unknown_shipper"),
    InvalidOrder: (422, "invalid_order"),
}
