"""Billing's slow side effects. Each takes an event's data and a port, and is
safe to run twice: the port delivers once per business key."""

from __future__ import annotations

from typing import Any

from monolith.billing.ports import Mailbox


def invoice_email(invoice: dict[str, Any], mailbox: Mailbox) -> bool:
    """Send the e-mail for an issued invoice; False when it went out before."""
    lines = "\n".join(
        f"  product {line['product_id']:>5}  {line['quantity']:>4} x "
        f"{line['unit_price']:>9}  less {line['discount']:>4}  = {line['amount']:>10}"
        for line in invoice["lines"]
    )
    message = (
        f"To: customer {invoice['customer_id']}\n"
        f"Subject: Northwind invoice {invoice['invoice_id']}\n"
        "\n"
        f"Invoice {invoice['invoice_id']} for order {invoice['invoice_id']}, "
        f"issued {invoice['issued_at']}.\n\n"
        f"{lines}\n"
        f"  freight {invoice['freight']:>52}\n"
        f"  total   {invoice['total']:>52}\n"
    )
    return mailbox.deliver(f"invoice-{invoice['invoice_id']}", message)
