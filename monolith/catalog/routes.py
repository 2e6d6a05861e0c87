"""Catalog's HTTP routes, for whichever host serves catalog."""

from __future__ import annotations

from migrate.kernel.http import Reply, Request, Route
from monolith.catalog import api
from monolith.catalog.domain import ProductNotFound
from monolith.catalog.ports import Ports


def list_products(ports: Ports, request: Request) -> Reply:
    return Reply(200, {"products": api.products(ports.query())})


def get_product(ports: Ports, request: Request) -> Reply:
    return Reply(200, api.product(ports.query(), request.params["product_id"]))


ROUTES = [
    Route("GET", "/products", list_products),
    Route("GET", "/products/<int:product_id>", get_product, bucket_key="product_id"),
]

ERRORS: dict[type[Exception], tuple[int, str]] = {
    ProductNotFound: (404, "product_not_found"),
}
