"""Provider states of catalog: products there are, and ids that are free.

A product is added through catalog's own handler by whichever host writes
catalog for the block: on catalog's service, which starts as a replica, the
stage makes it the writer for the block.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from migrate.contracts.stages import Stage
from migrate.contracts.states import ProviderStates
from monolith.catalog import api, handlers
from monolith.catalog.domain import Product, ProductNotFound

STATES = ProviderStates("catalog")


@STATES.given("a product is in the catalog")
def product_in_catalog(stage: Stage, product_id: int, unit_price: str,
                       name: str = "Queso Cabrales") -> None:
    ports = stage.ports("catalog")
    if _found(ports, product_id):
        return

    product = Product(product_id=product_id, name=name,
                      unit_price=Decimal(unit_price), units_in_stock=22)
    with stage.writing("catalog"):
        handlers.add_to_catalog(ports.command(), [], [], [product])


@STATES.given("no product has the id")
def no_such_product(stage: Stage, product_id: int) -> None:
    if _found(stage.ports("catalog"), product_id):
        raise RuntimeError(f"product {product_id} is in the catalog")


def _found(ports: Any, product_id: int) -> bool:
    try:
        api.product(ports.query(), product_id)
    except ProductNotFound:
        return False
    return True
