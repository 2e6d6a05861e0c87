"""Billing's use cases: open the unit of work, load, guard, act, commit."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from migrate.kernel.uow import now
from monolith.billing.domain import (
    Invoice,
    InvoiceLine,
    InvoiceNotFound,
    Payment,
    PaymentRejected,
)
from monolith.billing.events import InvoiceIssued, PaymentReceived
from monolith.billing.ports import UnitOfWork
from monolith.ordering.events import OrderPlaced


@dataclasses.dataclass(frozen=True)
class RecordPayment:
    invoice_id: int
    payment_id: str
    amount: Decimal


def issue_invoice(
    order: OrderPlaced, uow: UnitOfWork, issued_at: str | None = None
) -> None:
    """Invoice a placed order once: invoice id = order id makes a repeat a no-op."""
    with uow:
        if uow.invoices.get(order.order_id) is None:
            invoice = Invoice(
                invoice_id=order.order_id,
                customer_id=order.customer_id,
                issued_at=issued_at or now(),
                freight=order.freight,
                lines=[
                    InvoiceLine(
                        line.product_id, line.unit_price, line.quantity, line.discount
                    )
                    for line in order.lines
                ],
            )
            uow.invoices.add(invoice)
            uow.record(InvoiceIssued.of(invoice))
        uow.commit()


def record_payment(command: RecordPayment, uow: UnitOfWork) -> Payment:
    """Record a payment; the same payment id twice records it once."""
    with uow:
        invoice = uow.invoices.get(command.invoice_id)
        if invoice is None:
            raise InvoiceNotFound(command.invoice_id)

        earlier = next(
            (p for p in invoice.payments if p.payment_id == command.payment_id), None
        )
        if earlier is not None:
            if earlier.amount != command.amount:
                raise PaymentRejected(
                    f"payment {command.payment_id} on invoice {command.invoice_id} "
                    f"was {earlier.amount}, not {command.amount}; a retried payment "
                    "repeats its amount"
                )
            return earlier

        payment = invoice.pay(command.payment_id, command.amount, now())
        uow.invoices.add_payment(invoice, payment)
        uow.record(PaymentReceived.of(invoice, payment.payment_id, payment.amount))
        uow.commit()
        return payment


EVENT_HANDLERS = {
    OrderPlaced: issue_invoice,
}
