"""Provider states of billing, written once for either host.

Each state is reached the way billing reaches it in production, through its
own API and handlers: an invoice exists because billing's writer handled
the `OrderPlaced` that announced its order, a payment because billing
recorded it. The stage makes the host it runs beside billing's writer for
the moment it takes (the service starts as a replica) and gives it its
role back, so the same handlers serve the monolith and the service that
`migrate extract billing` generates. Ids come from the contract, so that
the interactions of one verification never share an invoice.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from migrate.contracts.stages import Stage
from migrate.contracts.states import ProviderStates
from migrate.kernel.sql import WRITER
from migrate.kernel.uow import now
from monolith.billing import api
from monolith.billing import handlers as billing
from monolith.billing.domain import InvoiceNotFound
from monolith.ordering import handlers as ordering
from monolith.ordering.domain import Order, OrderLine, ShipTo

STATES = ProviderStates("billing")

# Order 10248 of Northwind: three lines, one of them discounted.
_LINES = ((11, "14.00", 12, "0"), (42, "9.80", 10, "0"), (72, "34.80", 5, "0.15"))
_FREIGHT = Decimal("32.38")
_PAYMENT_IDS = uuid.UUID("2f0c5a8e-6d1b-4f8a-9c3e-71b5d0a4e6f2")


@STATES.given("an invoice is open")
def invoice_open(stage: Stage, invoice_id: int, customer_id: str = "VINET") -> None:
    if _found(stage, invoice_id):
        return

    stage.deliver("billing", ordering.placed(_order(invoice_id, customer_id)))


@STATES.given("no invoice has the id")
def no_such_invoice(stage: Stage, invoice_id: int) -> None:
    if _found(stage, invoice_id):
        raise RuntimeError(f"invoice {invoice_id} exists")


@STATES.given("billing is written on this host")
def written_here(stage: Stage) -> None:
    stage.set_role("billing", WRITER)


@STATES.given("billing is written on another host")
def written_elsewhere(stage: Stage) -> None:
    stage.written_elsewhere("billing")


@STATES.given("an order was placed")
def order_placed(stage: Stage, order_id: int, customer_id: str = "VINET") -> None:
    stage.deliver("billing", ordering.placed(_order(order_id, customer_id)))


@STATES.given("a payment was received")
def payment_received(stage: Stage, invoice_id: int, amount: str,
                     customer_id: str = "VINET") -> None:
    invoice_open(stage, invoice_id, customer_id)
    payment_id = str(uuid.uuid5(_PAYMENT_IDS, str(invoice_id)))
    command = billing.RecordPayment(invoice_id, payment_id, Decimal(amount))
    with stage.writing("billing"):
        billing.record_payment(command, stage.ports("billing").command())


def _found(stage: Stage, invoice_id: int) -> bool:
    try:
        api.invoice(stage.ports("billing").query(), invoice_id)
    except InvoiceNotFound:
        return False
    return True


def _order(order_id: int, customer_id: str) -> Order:
    return Order(
        order_id=order_id,
        customer_id=customer_id,
        ordered_at=now(),
        lines=[OrderLine(product, Decimal(price), quantity, Decimal(discount))
               for product, price, quantity, discount in _LINES],
        freight=_FREIGHT,
        ship_via=3,
        ship_to=ShipTo(name="Vins et alcools Chevalier", city="Reims",
                       country="France"),
    )
