"""What sits in a dead-letter queue, and sending it back.

A message lands in `<queue>-dlq` after its queue's maxReceiveCount receives
without a delete: its handler kept failing, or it carries no envelope. SQS
keeps no reason, so `peek` reports what a person needs to find it: the
event's type, id and aggregate, how often it was received, and whether its
body is an envelope at all. `redrive` moves messages back to their queue by
receive, send and delete, since the emulator lacks SQS's native move task;
a crash in between leaves a copy in both queues, which consumers absorb by
event id.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from botocore.client import BaseClient

from migrate.messaging import queue_ops
from migrate.messaging.errors import MalformedMessage
from migrate.messaging.message import ReceivedMessage


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    receive_count: int
    event_type: str | None
    event_id: str | None
    aggregate_id: str | None
    reason: str


def peek(
    sqs: BaseClient, queue: str, dlq_url: str, limit: int = 100
) -> list[DeadLetter]:
    """List up to `limit` dead letters; each is visible again right after."""
    seen: dict[str, DeadLetter] = {}
    handles: list[str] = []
    while len(seen) < limit:
        batch = queue_ops.receive(sqs, dlq_url, wait_seconds=0)
        fresh = [m for m in batch if m["MessageId"] not in seen]
        handles += [m["ReceiptHandle"] for m in batch]
        if not fresh:
            break
        for message in fresh:
            seen[message["MessageId"]] = _describe(queue, message)
    if handles:
        queue_ops.release(sqs, dlq_url, handles)
    return list(seen.values())[:limit]


def redrive(sqs: BaseClient, dlq_url: str, queue_url: str) -> int:
    """Send every dead letter back to its queue; return how many moved."""
    moved = 0
    while True:
        batch = queue_ops.receive(sqs, dlq_url, wait_seconds=0)
        if not batch:
            return moved
        for message in batch:
            sent: dict[str, Any] = {
                "QueueUrl": queue_url,
                "MessageBody": message["Body"],
                "MessageAttributes": _sendable(message.get("MessageAttributes", {})),
            }
            trace = message.get("Attributes", {}).get("AWSTraceHeader")
            if trace:
                # Set explicitly: the emulator does not carry it over itself.
                sent["MessageSystemAttributes"] = {
                    "AWSTraceHeader": {"DataType": "String", "StringValue": trace}
                }
            sqs.send_message(**sent)
        queue_ops.delete(sqs, dlq_url, [m["ReceiptHandle"] for m in batch])
        moved += len(batch)


def _describe(queue: str, message: dict[str, Any]) -> DeadLetter:
    count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0"))
    try:
        envelope = ReceivedMessage.from_sqs(message).envelope
    except MalformedMessage as error:
        return DeadLetter(
            queue,
            message["MessageId"],
            count,
            None,
            None,
            None,
            f"not an event envelope: {error}",
        )

    return DeadLetter(
        queue,
        message["MessageId"],
        count,
        envelope.event_type,
        envelope.event_id,
        envelope.aggregate_id,
        f"its handler on {queue} failed on every one of its receives",
    )


def _sendable(attributes: dict[str, Any]) -> dict[str, Any]:
    keep = ("DataType", "StringValue", "BinaryValue")
    return {
        name: {k: v for k, v in value.items() if k in keep}
        for name, value in attributes.items()
    }
