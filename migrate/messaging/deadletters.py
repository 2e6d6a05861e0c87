"""What sits in a dead-letter queue, why, and sending it back.

A message lands in `<queue>-dlq` after its queue's maxReceiveCount receives
without a delete: its handler kept failing, or it carries no envelope. SQS
keeps no reason, so the kit's consumers (the Nameko entrypoint and the
blocking consumer loop) move a message there themselves when its last
allowed receive fails (`bury`): the same body and attributes, plus
`dead_letter_reason` (the handler's error, or why the body is no envelope)
and `dead_letter_receives`. A crash between that send and the delete leaves
the message in both queues; its next failed receive buries it again, and a
redrive of both copies is absorbed by event id. A message that SQS moved
itself (its consumer died on every receive, or a Lambda function failed it,
which AWS records nowhere either) has no recorded reason, and `peek` says so.

`peek` reports what a person needs to find a dead letter: the event's type,
id and aggregate, how often it was received, and the reason. `redrive`
moves messages back to their queue by receive, send and delete, since the
emulator lacks SQS's native move task; a crash in between leaves a copy in
both queues, which consumers absorb by event id.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from typing import Any

from botocore.client import BaseClient

from migrate.messaging import queue_ops
from migrate.messaging.errors import MalformedMessage
from migrate.messaging.message import ReceivedMessage

_log = logging.getLogger(__name__)

REASON = "dead_letter_reason"
RECEIVES = "dead_letter_receives"
# Room for the envelope's attributes and a trace header within SQS's ten.
_ATTRIBUTE_LIMIT = 10
REASON_LIMIT = 1000


@dataclasses.dataclass(frozen=True)
class RedrivePolicy:
    """A queue's redrive: after `max_receives` receives, to `dead_letter_url`."""

    max_receives: int
    dead_letter_url: str


def redrive_policy(sqs: BaseClient, queue_url: str) -> RedrivePolicy | None:
    """The queue's redrive policy; None when it has none."""
    found = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]
    ).get("Attributes", {})
    if "RedrivePolicy" not in found:
        return None

    policy = json.loads(found["RedrivePolicy"])
    name = str(policy["deadLetterTargetArn"]).rsplit(":", 1)[-1]
    url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return RedrivePolicy(int(policy["maxReceiveCount"]), url)


def is_last_receive(policy: RedrivePolicy | None, message: dict[str, Any]) -> bool:
    if policy is None:
        return False

    count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    return count >= policy.max_receives


def bury(
    sqs: BaseClient,
    queue_url: str,
    policy: RedrivePolicy,
    message: dict[str, Any],
    reason: str,
) -> bool:
    """Move a message whose last allowed receive failed to the dead-letter
    queue with its reason, then delete it; False (and the message left to
    SQS's own redrive) when that could not be done."""
    attributes = _sendable(message.get("MessageAttributes", {}))
    receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "1")
    if len(attributes) + 2 <= _ATTRIBUTE_LIMIT:
        attributes[REASON] = {
            "DataType": "String",
            "StringValue": reason[:REASON_LIMIT],
        }
        attributes[RECEIVES] = {"DataType": "Number", "StringValue": str(receives)}
    try:
        sqs.send_message(**_sent(policy.dead_letter_url, message, attributes))
        queue_ops.delete(sqs, queue_url, [message["ReceiptHandle"]])
    except Exception as error:  # noqa: BLE001
        # SQS moves it after its next receive all the same, without a reason.
        _log.warning(
            "could not dead-letter message %s of %s with its reason: %s",
            message.get("MessageId"),
            queue_url,
            error,
        )
        return False

    _log.warning(
        "dead-lettered message %s of %s after %s receives: %s",
        message.get("MessageId"),
        queue_url,
        receives,
        reason,
    )
    return True


def failure(error: BaseException) -> str:
    """How a handler's error reads as a dead letter's reason."""
    return f"{type(error).__name__}: {error}"


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
            kept = {
                name: value
                for name, value in _sendable(
                    message.get("MessageAttributes", {})
                ).items()
                if name not in (REASON, RECEIVES)
            }
            sqs.send_message(**_sent(queue_url, message, kept))
        queue_ops.delete(sqs, dlq_url, [m["ReceiptHandle"] for m in batch])
        moved += len(batch)


def _sent(
    queue_url: str, message: dict[str, Any], attributes: dict[str, Any]
) -> dict[str, Any]:
    sent: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MessageBody": message["Body"],
        "MessageAttributes": attributes,
    }
    system = message.get("Attributes", {})
    trace = system.get("AWSTraceHeader")
    if trace:
        # Set explicitly: the emulator does not carry it over itself.
        sent["MessageSystemAttributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": trace}
        }
    if queue_url.endswith(".fifo"):
        sent["MessageGroupId"] = system.get("MessageGroupId", "dead-letters")
        # A new id: the original's may still be inside the dedup window.
        sent["MessageDeduplicationId"] = str(uuid.uuid4())
    return sent


def _describe(queue: str, message: dict[str, Any]) -> DeadLetter:
    recorded = message.get("MessageAttributes", {})
    count = int(
        recorded.get(RECEIVES, {}).get("StringValue")
        or message.get("Attributes", {}).get("ApproximateReceiveCount", "0")
    )
    reason = recorded.get(REASON, {}).get("StringValue") or (
        f"no reason recorded: received {count} times on {queue} without a "
        "delete (its handler failed, or its consumer stopped, each time)"
    )
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
            recorded.get(REASON, {}).get("StringValue")
            or f"not an event envelope: {error}",
        )

    return DeadLetter(
        queue,
        message["MessageId"],
        count,
        envelope.event_type,
        envelope.event_id,
        envelope.aggregate_id,
        reason,
    )


def _sendable(attributes: dict[str, Any]) -> dict[str, Any]:
    keep = ("DataType", "StringValue", "BinaryValue")
    return {
        name: {k: v for k, v in value.items() if k in keep}
        for name, value in attributes.items()
    }
