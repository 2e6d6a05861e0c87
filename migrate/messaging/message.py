"""An event envelope as a consumer receives it from SQS.

`ReceivedMessage.from_sqs` reads both shapes SNS delivers to a queue:

- raw delivery (the kit's default): the body is the envelope JSON and the
  publisher's attributes are SQS message attributes;
- the SNS notification: the body is SNS's JSON document (`Type` =
  `Notification`, the envelope JSON under `Message`, attributes under
  `MessageAttributes` as `{Type, Value}`).

`ReceivedMessage.from_lambda_record` reads a record of Lambda's SQS event.
Either way a consumer gets the `Envelope`, the attributes as strings, and
what it needs to delete or judge the message (receipt handle, approximate
receive count, SQS message id). Deduplicate by `event_id`, never by
`message_id`: a republished event has a new message id and the same event id.

A body that holds no envelope raises `MalformedMessage`; consumers leave
such a message alone, and SQS moves it to the dead-letter queue.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from migrate.kernel.events import Envelope
from migrate.messaging.errors import MalformedMessage

RAW = "raw"
SNS_NOTIFICATION = "sns"


@dataclasses.dataclass(frozen=True)
class ReceivedMessage:
    envelope: Envelope
    attributes: Mapping[str, str]
    receipt_handle: str
    receive_count: int
    message_id: str
    body: str
    delivery: str
    system_attributes: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    @property
    def trace_header(self) -> str | None:
        """X-Ray's header: SQS's `AWSTraceHeader` system attribute, else the
        message attribute of that name that the relay set on SNS."""
        return self.system_attributes.get("AWSTraceHeader") or self.attributes.get(
            "AWSTraceHeader"
        )

    @classmethod
    def from_sqs(cls, message: Mapping[str, Any]) -> ReceivedMessage:
        """From one entry of ReceiveMessage's `Messages` (ask for all message
        attributes and all system attributes, or they are missing)."""
        message_id = str(message.get("MessageId", "?"))
        system = {str(k): str(v) for k, v in message.get("Attributes", {}).items()}
        body, attributes, delivery = _unwrap(
            message_id,
            message.get("Body", ""),
            {
                name: _sqs_attribute_value(value)
                for name, value in message.get("MessageAttributes", {}).items()
            },
        )
        return cls(
            envelope=_envelope(message_id, body),
            attributes=attributes,
            receipt_handle=message["ReceiptHandle"],
            receive_count=int(system.get("ApproximateReceiveCount", "1")),
            message_id=message_id,
            body=message.get("Body", ""),
            delivery=delivery,
            system_attributes=system,
        )

    @classmethod
    def from_lambda_record(cls, record: Mapping[str, Any]) -> ReceivedMessage:
        """From one record of the event Lambda builds from an SQS queue."""
        message_id = str(record.get("messageId", "?"))
        system = {str(k): str(v) for k, v in record.get("attributes", {}).items()}
        body, attributes, delivery = _unwrap(
            message_id,
            record.get("body", ""),
            {
                name: _lambda_attribute_value(value)
                for name, value in record.get("messageAttributes", {}).items()
            },
        )
        return cls(
            envelope=_envelope(message_id, body),
            attributes=attributes,
            receipt_handle=record["receiptHandle"],
            receive_count=int(system.get("ApproximateReceiveCount", "1")),
            message_id=message_id,
            body=record.get("body", ""),
            delivery=delivery,
            system_attributes=system,
        )


def _unwrap(
    message_id: str, body: str, attributes: dict[str, str]
) -> tuple[str, dict[str, str], str]:
    """The envelope JSON, the attributes and the delivery form of a body."""
    notification = _notification(body)
    if notification is None:
        return body, attributes, RAW

    if not isinstance(notification.get("Message"), str):
        raise MalformedMessage(message_id, "SNS notification without a Message")

    sns_attributes = {
        str(name): str(value.get("Value", ""))
        for name, value in notification.get("MessageAttributes", {}).items()
        if isinstance(value, Mapping)
    }
    return notification["Message"], sns_attributes, SNS_NOTIFICATION


def _notification(body: str) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None

    if isinstance(document, dict) and document.get("Type") == "Notification":
        return document

    return None


def _envelope(message_id: str, body: str) -> Envelope:
    try:
        return Envelope.from_json(body)
    except (ValueError, TypeError) as exc:
        raise MalformedMessage(message_id, str(exc) or type(exc).__name__) from exc


def _sqs_attribute_value(value: Mapping[str, Any]) -> str:
    if "StringValue" in value:
        return str(value["StringValue"])

    binary = value.get("BinaryValue", b"")
    return base64.b64encode(binary).decode("ascii")


def _lambda_attribute_value(value: Mapping[str, Any]) -> str:
    if value.get("stringValue") is not None:
        return str(value["stringValue"])

    return str(value.get("binaryValue") or "")
