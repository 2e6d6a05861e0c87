"""The three SQS calls every consumer here makes, in one place.

`receive` long-polls for up to ten messages and asks for every attribute
(message attributes carry the envelope's metadata; system attributes carry
the receive count and the trace header). `delete` removes handled messages
in batches of ten and reports the receipt handles SQS refused, so a caller
can log them: such a message returns after its visibility timeout and is
handled again, which idempotent consumers absorb. `release` makes messages
visible again at once, for a consumer that took them and then stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from botocore.client import BaseClient

_log = logging.getLogger(__name__)

SQS_BATCH_LIMIT = 10


def receive(
    sqs: BaseClient,
    queue_url: str,
    *,
    max_messages: int = SQS_BATCH_LIMIT,
    wait_seconds: int = 1,
) -> list[dict[str, Any]]:
    answer = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max(1, min(max_messages, SQS_BATCH_LIMIT)),
        WaitTimeSeconds=wait_seconds,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )
    messages: list[dict[str, Any]] = answer.get("Messages", [])
    return messages


def delete(
    sqs: BaseClient, queue_url: str, receipt_handles: Sequence[str]
) -> list[str]:
    """Delete; return the receipt handles SQS did not delete."""
    refused: list[str] = []
    for start in range(0, len(receipt_handles), SQS_BATCH_LIMIT):
        chunk = receipt_handles[start : start + SQS_BATCH_LIMIT]
        answer = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": handle}
                for index, handle in enumerate(chunk)
            ],
        )
        for failure in answer.get("Failed", []):
            refused.append(chunk[int(failure["Id"])])
            _log.warning(
                "SQS kept a handled message on %s (%s: %s); it will be delivered again",
                queue_url,
                failure.get("Code"),
                failure.get("Message"),
            )
    return refused


def release(sqs: BaseClient, queue_url: str, receipt_handles: Sequence[str]) -> None:
    for start in range(0, len(receipt_handles), SQS_BATCH_LIMIT):
        chunk = receipt_handles[start : start + SQS_BATCH_LIMIT]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, handle in enumerate(chunk)
            ],
        )
