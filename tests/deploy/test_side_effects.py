"""The new side effects: what they produce, and once per key."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from monolith.billing import side_effects
from monolith.billing.outlets import BucketOutlet, FolderOutlet
from monolith.shipping import outlets as shipping_outlets
from monolith.shipping import side_effects as shipping_effects

from .helpers import invoice


def issued(invoice_id: int) -> dict[str, Any]:
    """The data of an `InvoiceIssued` event."""
    return {"invoice": invoice(invoice_id)}


def test_invoice_pdf_is_the_same_bytes_for_the_same_invoice(tmp_path: Path) -> None:
    first, second = FolderOutlet(tmp_path / "a"), FolderOutlet(tmp_path / "b")

    side_effects.invoice_pdf(issued(10248), first)
    side_effects.invoice_pdf(issued(10248), second)

    one = (tmp_path / "a" / "invoice-10248.pdf").read_bytes()
    assert one == (tmp_path / "b" / "invoice-10248.pdf").read_bytes()


def test_invoice_pdf_cross_reference_points_at_each_object(tmp_path: Path) -> None:
    side_effects.invoice_pdf(issued(10248), FolderOutlet(tmp_path))
    document = (tmp_path / "invoice-10248.pdf").read_bytes()

    start = int(re.search(rb"startxref\n(\d+)", document).group(1))  # type: ignore[union-attr]
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", document)]

    assert document[start:].startswith(b"xref")
    assert [document[o:].split(b" ")[0] for o in offsets] == [
        str(n).encode() for n in range(1, len(offsets) + 1)
    ]
    assert b"(Invoice 10248 for order 10248" in document


def test_invoice_pdf_is_rendered_once(tmp_path: Path) -> None:
    archive = FolderOutlet(tmp_path)

    assert side_effects.invoice_pdf(issued(10248), archive) is True
    assert side_effects.invoice_pdf(issued(10248), archive) is False


def test_payment_reminder_names_the_balance_still_open(tmp_path: Path) -> None:
    payment = {"payment_id": "p-1", "amount": "0.01",
               "invoice": invoice(10248, total="440.00", paid="100.00")}  # fmt: skip

    sent = side_effects.payment_reminder(payment, FolderOutlet(tmp_path))

    text = (tmp_path / "reminder-10248-p-1.eml").read_text()
    assert sent is True
    assert "340.00 still open" in text


def test_a_settling_payment_sends_no_reminder(tmp_path: Path) -> None:
    payment = {"payment_id": "p-2", "amount": "440.00",
               "invoice": invoice(10248, total="440.00", paid="440.00")}  # fmt: skip

    assert side_effects.payment_reminder(payment, FolderOutlet(tmp_path)) is False
    assert list(tmp_path.iterdir()) == []


def test_shipment_notification_goes_out_once_per_order(tmp_path: Path) -> None:
    mailbox = shipping_outlets.FolderOutlet(tmp_path)
    shipment = {"order_id": 10248, "shipper_id": 3, "shipped_at": "2026-12-04"}

    assert shipping_effects.shipment_notification(shipment, mailbox) is True
    assert shipping_effects.shipment_notification(shipment, mailbox) is False
    assert "with shipper 3" in (tmp_path / "shipment-10248.eml").read_text()


@pytest.fixture
def bucket(s3: Any, monkeypatch: pytest.MonkeyPatch, emulator: Any) -> str:
    name = f"outputs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return name


def test_bucket_outlet_writes_each_object_once(bucket: str, s3: Any) -> None:
    from monolith.billing import outlets

    outlets._s3.cache_clear()
    outlet = BucketOutlet(bucket, "invoice_pdf/")

    first = outlet.store("invoice-10248.pdf", b"%PDF-1.4 one")
    again = outlet.store("invoice-10248.pdf", b"%PDF-1.4 two")

    body = s3.get_object(Bucket=bucket, Key="invoice_pdf/invoice-10248.pdf")["Body"]
    assert (first, again) == (True, False)
    assert body.read() == b"%PDF-1.4 one"
    outlets._s3.cache_clear()
