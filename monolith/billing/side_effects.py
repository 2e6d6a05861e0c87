"""Billing's slow side effects. Each takes the data of the event that
triggers it and a port, and is safe to run twice: the port delivers once per
business key. The same handlers run on either host: in-process after
commit on the monolith, as Lambda functions fed by SQS (`functions.py`).

- `invoice_email` (on `InvoiceIssued`): the customer's e-mail for an issued
  invoice, keyed `invoice-<id>`;
- `invoice_pdf` (on `InvoiceIssued`): the invoice as a one-file PDF
  document, `invoice-<id>.pdf`;
- `payment_reminder` (on `PaymentReceived`): after a payment that leaves a
  balance, a reminder of what is still open, keyed by invoice and payment; a
  payment that settles the invoice sends nothing.

The PDF is written by hand (PDF 1.4, Courier, A4 pages of 60 lines): the
same invoice always gives the same bytes, and no library is needed.
"""

from __future__ import annotations

from typing import Any

from migrate.kernel import money
from monolith.billing.ports import Archive, Mailbox

_LINES_PER_PAGE = 60


def invoice_email(issued: dict[str, Any], mailbox: Mailbox) -> bool:
    """Send the e-mail for an issued invoice; False when it went out before."""
    invoice = issued["invoice"]
    message = (
        f"To: customer {invoice['customer_id']}\n"
        f"Subject: Northwind invoice {invoice['invoice_id']}\n"
        "\n" + "\n".join(_invoice_text(invoice)) + "\n"
    )
    return mailbox.deliver(f"invoice-{invoice['invoice_id']}", message)


def invoice_pdf(issued: dict[str, Any], archive: Archive) -> bool:
    """Render an issued invoice; False when it was rendered before."""
    invoice = issued["invoice"]
    document = _pdf(
        [
            f"Northwind Traders - invoice {invoice['invoice_id']}",
            f"Customer {invoice['customer_id']}",
            "",
            *_invoice_text(invoice),
        ]
    )
    return archive.store(f"invoice-{invoice['invoice_id']}.pdf", document)


def payment_reminder(payment: dict[str, Any], mailbox: Mailbox) -> bool:
    """Remind the customer of the balance a payment left open; False when
    the invoice is settled or this reminder went out before."""
    invoice = payment["invoice"]
    balance = money.parse(invoice["total"]) - money.parse(invoice["paid"])
    if balance <= 0:
        return False

    message = (
        f"To: customer {invoice['customer_id']}\n"
        f"Subject: Northwind invoice {invoice['invoice_id']}: "
        f"{money.text(balance)} still open\n"
        "\n"
        f"Thank you for your payment of {payment['amount']} "
        f"(reference {payment['payment_id']}).\n"
        f"Invoice {invoice['invoice_id']} totals {invoice['total']}; "
        f"{invoice['paid']} is paid and {money.text(balance)} is still open.\n"
    )
    key = f"reminder-{invoice['invoice_id']}-{payment['payment_id']}"
    return mailbox.deliver(key, message)


def _invoice_text(invoice: dict[str, Any]) -> list[str]:
    lines = [
        f"  product {line['product_id']:>5}  {line['quantity']:>4} x "
        f"{line['unit_price']:>9}  less {line['discount']:>4}  = {line['amount']:>10}"
        for line in invoice["lines"]
    ]
    return [
        f"Invoice {invoice['invoice_id']} for order {invoice['invoice_id']}, "
        f"issued {invoice['issued_at']}.",
        "",
        *lines,
        f"  freight {invoice['freight']:>52}",
        f"  total   {invoice['total']:>52}",
    ]


def _pdf(lines: list[str]) -> bytes:
    """A PDF 1.4 file showing `lines` in Courier 10 pt on A4 pages."""
    pages = [
        lines[start : start + _LINES_PER_PAGE]
        for start in range(0, max(len(lines), 1), _LINES_PER_PAGE)
    ]
    # Objects 1-3: catalog, page tree, font; then a page and its content
    # stream for each page.
    kids = " ".join(f"{4 + 2 * n} 0 R" for n in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>",
    ]
    for n, page in enumerate(pages):
        shown = b" T* ".join(b"(" + _pdf_string(line) + b") Tj" for line in page)
        stream = b"BT /F1 10 Tf 12 TL 50 800 Td " + shown + b" ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> "
            + f"/Contents {5 + 2 * n} 0 R >>".encode()
        )
        objects.append(
            f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream"
        )

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    table = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
        f"startxref\n{table}\n%%EOF\n"
    ).encode()
    return bytes(out)


def _pdf_string(text: str) -> bytes:
    raw = text.encode("latin-1", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
