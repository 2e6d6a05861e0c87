"""How a replica of billing follows its writer.

Every billing event carries the invoice's whole state and its version, so a
replica keeps whichever version is newest: events that arrive twice, late or
out of order change nothing they should not.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from monolith.billing.domain import Invoice, InvoiceLine, Payment
from monolith.billing.ports import UnitOfWork


def invoice_from_state(state: dict[str, Any]) -> Invoice:
    return Invoice(
        invoice_id=int(state["invoice_id"]),
        customer_id=state["customer_id"],
        issued_at=state["issued_at"],
        freight=Decimal(state["freight"]),
        lines=[
            InvoiceLine(
                int(line["product_id"]),
                Decimal(line["unit_price"]),
                int(line["quantity"]),
                Decimal(line["discount"]),
            )
            for line in state["lines"]
        ],
        payments=[
            Payment(
                p["payment_id"],
                int(state["invoice_id"]),
                Decimal(p["amount"]),
                p["received_at"],
            )
            for p in state["payments"]
        ],
        version=int(state["version"]),
    )


def apply(data: dict[str, Any], uow: UnitOfWork) -> bool:
    """Apply one billing event's state; False when the replica already had it."""
    invoice = invoice_from_state(data["invoice"])
    with uow:
        current = uow.invoices.version_of(invoice.invoice_id)
        if current is not None and current >= invoice.version:
            uow.commit()
            return False

        uow.invoices.replace(invoice)
        uow.commit()
        return True
