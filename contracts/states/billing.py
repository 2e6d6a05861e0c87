"""Provider states of billing, on the monolith and on billing's service.

Each state is reached the way billing reaches it in production. On the
monolith an invoice exists because ordering took an order (its own handler)
and billing invoiced it when the order was announced. On the service, while
it is a replica, an invoice exists because the service followed the
monolith's `InvoiceIssued`; once it writes, because it consumed the
`OrderPlaced` itself. Ids come from the contract, so that the interactions
of one verification never share an invoice.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from migrate.contracts.stages import MonolithStage, ServiceStage, Stage
from migrate.contracts.states import MONOLITH, SERVICE, ProviderStates
from migrate.kernel.sql import FENCED, REPLICA, WRITER
from migrate.kernel.uow import now
from monolith.billing import api
from monolith.billing import handlers as billing
from monolith.billing.domain import Invoice, InvoiceLine, InvoiceNotFound
from monolith.billing.events import InvoiceIssued
from monolith.ordering import handlers as ordering
from monolith.ordering.domain import Order, OrderLine, ShipTo

STATES = ProviderStates("billing")

# Order 10248 of Northwind: three lines, one of them discounted.
_LINES = ((11, "14.00", 12, "0"), (42, "9.80", 10, "0"), (72, "34.80", 5, "0.15"))
_FREIGHT = Decimal("32.38")
_PAYMENT_IDS = uuid.UUID("2f0c5a8e-6d1b-4f8a-9c3e-71b5d0a4e6f2")


@STATES.given("an invoice is open", on=(MONOLITH,))
def invoice_open_on_monolith(stage: MonolithStage, invoice_id: int,
                             customer_id: str = "VINET") -> None:
    if _found(stage, invoice_id):
        return

    ordering.import_orders([_order(invoice_id, customer_id)],
                           stage.ports("ordering").command())


@STATES.given("an invoice is open", on=(SERVICE,))
def invoice_open_on_service(stage: ServiceStage, invoice_id: int,
                            customer_id: str = "VINET") -> None:
    if _found(stage, invoice_id):
        return

    stage.follow(InvoiceIssued.of(_invoice(invoice_id, customer_id)))


@STATES.given("no invoice has the id")
def no_such_invoice(stage: Stage, invoice_id: int) -> None:
    if _found(stage, invoice_id):
        raise RuntimeError(f"invoice {invoice_id} exists")


@STATES.given("billing is written on this host")
def written_here(stage: Stage) -> None:
    stage.set_role("billing", WRITER)


@STATES.given("billing is written on another host")
def written_elsewhere(stage: Stage) -> None:
    stage.set_role("billing", FENCED if stage.host == MONOLITH else REPLICA)


@STATES.given("an order was placed", on=(MONOLITH,))
def order_placed_on_monolith(stage: MonolithStage, order_id: int,
                             customer_id: str = "VINET") -> None:
    invoice_open_on_monolith(stage, order_id, customer_id)


@STATES.given("an order was placed", on=(SERVICE,))
def order_placed_on_service(stage: ServiceStage, order_id: int,
                            customer_id: str = "VINET") -> None:
    stage.set_role("billing", WRITER)
    stage.consume(ordering.placed(_order(order_id, customer_id)))


@STATES.given("a payment was received", on=(MONOLITH,))
def payment_received_on_monolith(stage: MonolithStage, invoice_id: int,
                                 amount: str, customer_id: str = "VINET") -> None:
    invoice_open_on_monolith(stage, invoice_id, customer_id)
    _pay(stage, invoice_id, amount)


@STATES.given("a payment was received", on=(SERVICE,))
def payment_received_on_service(stage: ServiceStage, invoice_id: int,
                                amount: str, customer_id: str = "VINET") -> None:
    stage.set_role("billing", WRITER)
    invoice_open_on_service(stage, invoice_id, customer_id)
    _pay(stage, invoice_id, amount)


def _pay(stage: Stage, invoice_id: int, amount: str) -> None:
    payment_id = str(uuid.uuid5(_PAYMENT_IDS, str(invoice_id)))
    command = billing.RecordPayment(invoice_id, payment_id, Decimal(amount))
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


def _invoice(invoice_id: int, customer_id: str) -> Invoice:
    return Invoice(
        invoice_id=invoice_id,
        customer_id=customer_id,
        issued_at=now(),
        freight=_FREIGHT,
        lines=[InvoiceLine(product, Decimal(price), quantity, Decimal(discount))
               for product, price, quantity, discount in _LINES],
    )
