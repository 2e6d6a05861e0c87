"""Billing's public surface: how an invoice looks to anyone outside billing.

The HTTP routes return exactly these shapes, so an in-process caller today
and an HTTP client of the billing service tomorrow see the same thing.
"""

from __future__ import annotations

from typing import Any

from migrate.kernel import money
from monolith.billing.domain import Invoice, InvoiceNotFound
from monolith.billing.ports import UnitOfWork


def invoice_view(invoice: Invoice) -> dict[str, Any]:
    return {
        "invoice_id": invoice.invoice_id,
        "order_id": invoice.order_id,
        "customer_id": invoice.customer_id,
        "issued_at": invoice.issued_at,
        "status": invoice.status,
        "freight": money.text(invoice.freight),
        "total": money.text(invoice.total),
        "paid": money.text(invoice.paid),
        "balance": money.text(invoice.balance),
        "lines": [
            {
                "product_id": line.product_id,
                "unit_price": money.text(line.unit_price),
                "quantity": line.quantity,
                "discount": str(line.discount),
                "amount": money.text(line.amount),
            }
            for line in invoice.lines
        ],
        "payments": [
            {
                "payment_id": p.payment_id,
                "amount": money.text(p.amount),
                "received_at": p.received_at,
            }
            for p in invoice.payments
        ],
    }


def invoice(uow: UnitOfWork, invoice_id: int) -> dict[str, Any]:
    with uow:
        found = uow.invoices.get(invoice_id)
    if found is None:
        raise InvoiceNotFound(invoice_id)

    return invoice_view(found)


def customer_invoices(uow: UnitOfWork, customer_id: str) -> list[dict[str, Any]]:
    with uow:
        return [invoice_view(i) for i in uow.invoices.of_customer(customer_id)]
