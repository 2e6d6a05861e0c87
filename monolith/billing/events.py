"""What billing announces. Each event carries the invoice's whole state and
version, so a replica applies it without asking the writer anything."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from migrate.kernel import money
from migrate.kernel.events import Event
from monolith.billing.domain import Invoice


def _invoice_state(invoice: Invoice) -> dict[str, Any]:
    return {
        "invoice_id": invoice.invoice_id,
        "customer_id": invoice.customer_id,
        "issued_at": invoice.issued_at,
        "freight": money.text(invoice.freight),
        "total": money.text(invoice.total),
        "paid": money.text(invoice.paid),
        "status": invoice.status,
        "version": invoice.version,
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


@dataclasses.dataclass(frozen=True)
class InvoiceIssued(Event):
    context: ClassVar[str] = "billing"

    invoice: dict[str, Any]

    @classmethod
    def of(cls, invoice: Invoice) -> InvoiceIssued:
        return cls(_invoice_state(invoice))

    @property
    def aggregate_id(self) -> str:
        return str(self.invoice["invoice_id"])


@dataclasses.dataclass(frozen=True)
class PaymentReceived(Event):
    context: ClassVar[str] = "billing"

    payment_id: str
    amount: str
    invoice: dict[str, Any]

    @classmethod
    def of(cls, invoice: Invoice, payment_id: str, amount: Any) -> PaymentReceived:
        return cls(payment_id, money.text(amount), _invoice_state(invoice))

    @property
    def aggregate_id(self) -> str:
        return str(self.invoice["invoice_id"])
