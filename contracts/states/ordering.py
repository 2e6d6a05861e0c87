"""Provider states of ordering: orders placed the way customers place them.

On the monolith ordering reaches catalog, customers and shipping in-process;
the customer, the product and the shipper an order needs are registered
through those contexts' own handlers first, and the order is placed. On
ordering's service the order is taken in through ordering's own
`import_orders`, with the service made the writer for it (the service
reaches catalog, customers and shipping only through the router, which a
verification does not run). When the service places an order itself, its
calls of catalog, customers and shipping are answered from the contracts
ordering holds with them (see `migrate.contracts.stubs`), so the customer,
the product and the shipper an order needs are those contracts' registered
customer, priced product and registered shipper.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from contracts.states.catalog import product_in_catalog
from contracts.states.customers import customer_registered
from contracts.states.shipping import shipper_registered
from migrate.contracts.stages import ServiceStage, Stage
from migrate.contracts.states import MONOLITH, SERVICE, ProviderStates
from migrate.kernel.sql import WRITER
from migrate.kernel.uow import now
from monolith.ordering import handlers
from monolith.ordering.api import order as find_order
from monolith.ordering.domain import Order, OrderLine, OrderNotFound, ShipTo

STATES = ProviderStates("ordering")

# Northwind's Federal Shipping, the shipper of every order these states take.
_SHIPPER = 3


@STATES.given("an order was placed", on=(MONOLITH,))
def order_placed(stage: Stage, customer_id: str, product_id: int,
                 quantity: int, unit_price: str = "14.00") -> None:
    customer_registered(stage, customer_id)
    product_in_catalog(stage, product_id, unit_price)
    shipper_registered(stage, _SHIPPER)
    ports = stage.ports("ordering")
    command = handlers.PlaceOrder(
        customer_id=customer_id,
        lines=(handlers.LineRequest(product_id, quantity, Decimal("0.15")),),
        freight=Decimal("32.38"),
        ship_via=_SHIPPER,
        ship_to=ShipTo(name="Vins et alcools Chevalier", city="Reims",
                       country="France"),
    )
    handlers.place_order(command, ports.command(), ports.catalog, ports.customers,
                         ports.shipping)


@STATES.given("an order was placed", on=(SERVICE,))
def order_placed_on_service(stage: ServiceStage, customer_id: str, product_id: int,
                            quantity: int, unit_price: str = "14.00") -> None:
    ports = stage.ports("ordering")
    _take(stage, ports, _free_order_id(ports), customer_id,
          OrderLine(product_id, Decimal(unit_price), quantity, Decimal("0.15")))


@STATES.given("an order was taken")
def order_taken(stage: Stage, order_id: int, customer_id: str = "VINET") -> None:
    ports = stage.ports("ordering")
    if _found(ports, order_id):
        return

    _take(stage, ports, order_id, customer_id,
          OrderLine(11, Decimal("14.00"), 12, Decimal("0.15")))


def _take(stage: Stage, ports: Any, order_id: int, customer_id: str,
          line: OrderLine) -> None:
    """An order taken in through ordering's own `import_orders`, as the host
    that writes ordering."""
    order = Order(
        order_id=order_id,
        customer_id=customer_id,
        ordered_at=now(),
        lines=[line],
        freight=Decimal("32.38"),
        ship_via=_SHIPPER,
        ship_to=ShipTo(name="Vins et alcools Chevalier", city="Reims",
                       country="France"),
    )
    with stage.writing("ordering"):
        handlers.import_orders([order], ports.command())


@STATES.given("no order has the id")
def no_such_order(stage: Stage, order_id: int) -> None:
    if _found(stage.ports("ordering"), order_id):
        raise RuntimeError(f"order {order_id} exists")


@STATES.given("the customer, the product and the shipper of an order exist",
              on=(MONOLITH,))
def order_can_be_placed(stage: Stage, customer_id: str, product_id: int,
                        unit_price: str, shipper_id: int) -> None:
    customer_registered(stage, customer_id)
    product_in_catalog(stage, product_id, unit_price)
    shipper_registered(stage, shipper_id)


@STATES.given("the customer, the product and the shipper of an order exist",
              on=(SERVICE,))
def order_can_be_placed_on_service(stage: ServiceStage, customer_id: str,
                                   product_id: int, unit_price: str,
                                   shipper_id: int) -> None:
    """Nothing to set here: catalog, customers and shipping answer the
    service from the contracts ordering holds with them, which name this
    customer, product and shipper."""


@STATES.given("ordering is written on this host")
def written_here(stage: Stage) -> None:
    stage.set_role("ordering", WRITER)


@STATES.given("ordering is written on another host")
def written_elsewhere(stage: Stage) -> None:
    stage.written_elsewhere("ordering")


def _found(ports: Any, order_id: int) -> bool:
    try:
        find_order(ports.query(), order_id)
    except OrderNotFound:
        return False
    return True


def _free_order_id(ports: Any) -> int:
    order_id = 30_000
    while True:
        try:
            find_order(ports.query(), order_id)
        except OrderNotFound:
            return order_id
        order_id += 1
