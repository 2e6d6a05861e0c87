"""Shipping's HTTP routes."""

from __future__ import annotations

from migrate.kernel.http import Reply, Request, Route
from monolith.shipping import api
from monolith.shipping.domain import ShipmentNotFound
from monolith.shipping.ports import Ports


def get_shipment(ports: Ports, request: Request) -> Reply:
    return Reply(200, api.shipment(ports.query(), request.params["order_id"]))


ROUTES = [
    Route("GET", "/shipments/<int:order_id>", get_shipment, bucket_key="order_id"),
]

ERRORS: dict[type[Exception], tuple[int, str]] = {
    ShipmentNotFound: (404, "shipment_not_found"),
}
