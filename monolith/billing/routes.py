"""Billing's HTTP routes, for whichever host serves billing."""

from __future__ import annotations

import uuid

from migrate.kernel import money
from migrate.kernel.http import Reply, Request, Route, require
from monolith.billing import api, handlers
from monolith.billing.domain import InvoiceNotFound, PaymentRejected
from monolith.billing.ports import Ports

# A payment's id comes from the client's Idempotency-Key when it sends one,
# so a retried request records the payment once, whichever host receives it.
_PAYMENT_IDS = uuid.UUID("6f1b7a52-3d0c-4b8e-9a57-2c41d9e0b3aa")


def get_invoice(ports: Ports, request: Request) -> Reply:
    return Reply(200, api.invoice(ports.query(), request.params["invoice_id"]))


def customer_invoices(ports: Ports, request: Request) -> Reply:
    customer_id = request.params["customer_id"]
    return Reply(
        200,
        {
            "customer_id": customer_id,
            "invoices": api.customer_invoices(ports.query(), customer_id),
        },
    )


def pay_invoice(ports: Ports, request: Request) -> Reply:
    amount = money.parse(require(request.body, "amount", (str, int)), "amount")
    key = request.headers.get("Idempotency-Key")
    invoice_id = request.params["invoice_id"]
    # The key is the client's for one payment of one invoice; the same key
    # on another invoice is another payment.
    payment_id = str(
        uuid.uuid5(_PAYMENT_IDS, f"{invoice_id}:{key}") if key else uuid.uuid4()
    )
    command = handlers.RecordPayment(invoice_id, payment_id, amount)

    payment = handlers.record_payment(command, ports.command())

    body = {
        "payment_id": payment.payment_id,
        "invoice_id": payment.invoice_id,
        "amount": money.text(payment.amount),
        "received_at": payment.received_at,
    }
    return Reply(201, body, {"Location": f"/invoices/{payment.invoice_id}"})


ROUTES = [
    Route("GET", "/invoices/<int:invoice_id>", get_invoice, bucket_key="invoice_id"),
    Route(
        "GET",
        "/customers/<customer_id>/invoices",
        customer_invoices,
        bucket_key="customer_id",
    ),
    Route(
        "POST",
        "/invoices/<int:invoice_id>/payments",
        pay_invoice,
        bucket_key="invoice_id",
    ),
]

ERRORS: dict[type[Exception], tuple[int, str]] = {
    InvoiceNotFound: (404, "invoice_not_found"),
    PaymentRejected: (422, "payment_rejected"),
}
