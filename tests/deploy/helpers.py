"""Builders and waits for the deploy tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from migrate.kernel.events import Envelope


def invoice(invoice_id: int, total: str = "440.00", paid: str = "0.00") -> dict:
    return {
        "invoice_id": invoice_id,
        "customer_id": "ALFKI",
        "issued_at": "2026-12-03T10:00:00+00:00",
        "freight": "32.38",
        "total": total,
        "paid": paid,
        "status": "open",
        "version": 1,
        "lines": [
            {
                "product_id": 11,
                "unit_price": "14.00",
                "quantity": 12,
                "discount": "0",
                "amount": "168.00",
            }
        ],
        "payments": [],
    }


def issued(invoice_id: int) -> Envelope:
    return Envelope(
        event_id=str(uuid.uuid4()),
        event_type="InvoiceIssued",
        context="billing",
        aggregate_id=str(invoice_id),
        schema_version=1,
        origin="monolith",
        occurred_at="2026-12-03T10:00:00+00:00",
        data={"invoice": invoice(invoice_id)},
    )


def eventually(
    probe: Callable[[], Any], timeout: float = 15.0, every: float = 0.1
) -> Any:
    """The first truthy result of `probe`, or a failed test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result

        if time.monotonic() > deadline:
            pytest.fail(f"nothing came of {probe} within {timeout} s")

        time.sleep(every)


def depth(sqs: Any, queue_url: str) -> int:
    found = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
        ],
    )["Attributes"]
    return int(found["ApproximateNumberOfMessages"]) + int(
        found["ApproximateNumberOfMessagesNotVisible"]
    )
