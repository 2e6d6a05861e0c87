"""Invoices and payments. Plain Python: no web framework, no ORM, no vendor."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from migrate.kernel import money


class BillingError(Exception):
    """Root of the errors billing's rules raise."""


class InvoiceNotFound(BillingError):
    def __init__(self, invoice_id: int):
        super().__init__(f"no invoice {invoice_id}")
        self.invoice_id = invoice_id


class PaymentRejected(BillingError):
    """A payment that breaks a rule of the invoice it is for."""


@dataclasses.dataclass(frozen=True)
class InvoiceLine:
    product_id: int
    unit_price: Decimal
    quantity: int
    discount: Decimal

    @property
    def amount(self) -> Decimal:
        return money.line_amount(self.unit_price, self.quantity, self.discount)


@dataclasses.dataclass(frozen=True)
class Payment:
    payment_id: str
    invoice_id: int
    amount: Decimal
    received_at: str


@dataclasses.dataclass
class Invoice:
    """Invoice id = order id: both hosts derive it, so ids never collide."""

    invoice_id: int
    customer_id: str
    issued_at: str
    freight: Decimal
    lines: list[InvoiceLine]
    payments: list[Payment] = dataclasses.field(default_factory=list)
    version: int = 1

    @property
    def order_id(self) -> int:
        return self.invoice_id

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00")) + self.freight

    @property
    def paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal("0.00"))

    @property
    def balance(self) -> Decimal:
        return self.total - self.paid

    @property
    def status(self) -> str:
        return "paid" if self.balance <= 0 else "open"

    def pay(self, payment_id: str, amount: Decimal, received_at: str) -> Payment:
        if amount <= 0:
            raise PaymentRejected(
                f"payment of {amount} on invoice {self.invoice_id}: "
                "amounts must be positive"
            )

        if amount > self.balance:
            raise PaymentRejected(
                f"payment of {amount} on invoice {self.invoice_id} exceeds "
                f"its balance of {self.balance}"
            )

        payment = Payment(payment_id, self.invoice_id, amount, received_at)
        self.payments.append(payment)
        self.version += 1
        return payment
