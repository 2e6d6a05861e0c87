"""Builders and waits shared by the messaging tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from migrate.kernel.events import Envelope


def envelope(
    event_type: str = "InvoiceIssued",
    aggregate_id: str = "10248",
    context: str = "billing",
    **data: Any,
) -> Envelope:
    return Envelope(
        event_id=str(uuid.uuid4()),
        event_type=event_type,
        context=context,
        aggregate_id=aggregate_id,
        schema_version=1,
        origin="monolith",
        occurred_at="2026-12-03T10:00:00+00:00",
        data=data or {"invoice_id": aggregate_id, "total_cents": 44000},
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
    """Messages in a queue, visible or in flight."""
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


def drain(sqs: Any, queue_url: str, expected: int, timeout: float = 10.0) -> list:
    """Receive (without deleting) until `expected` messages came."""
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(received) < expected and time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        received.extend(answer.get("Messages", []))
    return received
