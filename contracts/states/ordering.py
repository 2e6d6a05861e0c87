"""Provider states of ordering: orders placed the way customers place them.

Ordering is hosted by the monolith only, where it reaches catalog and
customers in-process; the customer and the product an order needs are
registered through those contexts' own handlers first.
"""

from __future__ import annotations

from decimal import Decimal

from contracts.states.catalog import product_in_catalog
from contracts.states.customers import customer_registered
from migrate.contracts.stages import Stage
from migrate.contracts.states import MONOLITH, ProviderStates
from monolith.ordering import handlers
from monolith.ordering.domain import ShipTo

STATES = ProviderStates("ordering")


@STATES.given("an order was placed", on=(MONOLITH,))
def order_placed(stage: Stage, customer_id: str, product_id: int,
                 quantity: int, unit_price: str = "14.00") -> None:
    customer_registered(stage, customer_id)
    product_in_catalog(stage, product_id, unit_price)
    ports = stage.ports("ordering")
    command = handlers.PlaceOrder(
        customer_id=customer_id,
        lines=(handlers.LineRequest(product_id, quantity, Decimal("0.15")),),
        freight=Decimal("32.38"),
        ship_via=3,
        ship_to=ShipTo(name="Vins et alcools Chevalier", city="Reims",
                       country="France"),
    )
    handlers.place_order(command, ports.command(), ports.catalog, ports.customers)
