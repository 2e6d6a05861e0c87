"""Publishing event envelopes to SNS topics.

Each envelope becomes one SNS message: the body is `Envelope.to_json()`, and
the envelope's attributes (`event_id`, `event_type`, `context`,
`aggregate_id`, `schema_version`, `origin`) travel as SNS message
attributes, so filter policies and consumers can read them without parsing
the body. `schema_version` is a Number attribute (filter policies can then
compare it numerically); the others are Strings. An attribute whose value is
empty is left out, because SNS refuses empty attribute values.

What it guarantees:

- A call that returns has had every message accepted by SNS. Acceptance is
  at least once: a retried or republished event reaches consumers twice, with
  the same `event_id` and a different SNS/SQS message id.
- `publish_batch` sends in the order given, at most ten messages or 256 KiB
  per PublishBatch call. When SNS refuses an entry it raises `PublishFailed`
  naming the refused events and the events accepted before the first refusal,
  and sends nothing after that call.

What it does not guarantee:

- Order on standard topics: SNS and SQS may deliver in any order.
- On FIFO topics (the ARN ends in `.fifo`) each message's group id is the
  envelope's aggregate id and its deduplication id is the event id: messages
  of one aggregate arrive in publish order, and SNS drops a republished event
  within its five-minute deduplication window. Order across aggregates is
  not kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from botocore.client import BaseClient

from migrate.kernel.events import Envelope
from migrate.messaging.errors import (
    MessageTooLarge,
    PublishFailed,
    TooManyAttributes,
)

_log = logging.getLogger(__name__)

SNS_SIZE_LIMIT = 256 * 1024
SNS_BATCH_LIMIT = 10
SNS_ATTRIBUTE_LIMIT = 10
_NUMBER_ATTRIBUTES = frozenset({"schema_version"})


def is_fifo(topic_arn: str) -> bool:
    return topic_arn.endswith(".fifo")


def message_attributes(
    envelope: Envelope, extra: Mapping[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """The SNS MessageAttributes for an envelope (plus `extra` strings)."""
    values = {**envelope.attributes(), **(extra or {})}
    attributes = {
        name: {
            "DataType": "Number" if name in _NUMBER_ATTRIBUTES else "String",
            "StringValue": value,
        }
        for name, value in values.items()
        if value != ""
    }
    if len(attributes) > SNS_ATTRIBUTE_LIMIT:
        raise TooManyAttributes(envelope.event_id, len(attributes), SNS_ATTRIBUTE_LIMIT)

    return attributes


class SnsPublisher:
    def __init__(self, sns_client: BaseClient):
        self._sns = sns_client

    def publish(
        self,
        topic_arn: str,
        envelope: Envelope,
        *,
        attributes: Mapping[str, str] | None = None,
    ) -> str:
        """Publish one envelope; return SNS's message id. `attributes` adds
        string message attributes (a trace header, say) to the envelope's."""
        entry = _entry(topic_arn, envelope, attributes)
        entry.pop("Id")
        answer = self._sns.publish(TopicArn=topic_arn, **entry)
        _log.debug("published %s to %s", envelope.event_id, topic_arn)
        message_id: str = answer["MessageId"]
        return message_id

    def publish_batch(
        self,
        topic_arn: str,
        envelopes: Sequence[Envelope],
        attributes: Sequence[Mapping[str, str] | None] | None = None,
    ) -> list[str]:
        """Publish in order; return SNS's message ids in the same order.
        `attributes`, when given, adds string message attributes to each
        envelope's (one mapping or None per envelope)."""
        message_ids: list[str] = []
        accepted: list[str] = []
        for chunk in _chunks(topic_arn, envelopes, attributes):
            answer = self._sns.publish_batch(
                TopicArn=topic_arn, PublishBatchRequestEntries=chunk
            )
            ids = {ok["Id"]: ok["MessageId"] for ok in answer.get("Successful", [])}
            failures = _refusals(chunk, envelopes, answer.get("Failed", []), ids)
            for entry in chunk:
                if entry["Id"] not in ids:
                    break

                message_ids.append(ids[entry["Id"]])
                accepted.append(envelopes[int(entry["Id"])].event_id)
            if failures:
                raise PublishFailed(topic_arn, failures, accepted)

        _log.debug("published %d event(s) to %s", len(message_ids), topic_arn)
        return message_ids


def _refusals(
    chunk: list[dict[str, Any]],
    envelopes: Sequence[Envelope],
    failed: list[dict[str, Any]],
    accepted_ids: Mapping[str, str],
) -> dict[str, str]:
    """Event id to SNS's reason, for every entry of a chunk not accepted."""
    refusals = {
        envelopes[int(bad["Id"])].event_id: (
            f"{bad.get('Code', '?')}: {bad.get('Message', '')}".strip()
        )
        for bad in failed
    }
    for entry in chunk:
        event_id = envelopes[int(entry["Id"])].event_id
        # moto drops some invalid entries without listing them as failed.
        if entry["Id"] not in accepted_ids and event_id not in refusals:
            refusals[event_id] = "neither accepted nor refused"
    return refusals


def _entry(
    topic_arn: str,
    envelope: Envelope,
    extra: Mapping[str, str] | None = None,
    index: int = 0,
) -> dict[str, Any]:
    body = envelope.to_json()
    attributes = message_attributes(envelope, extra)
    size = _wire_size(body, attributes)
    if size > SNS_SIZE_LIMIT:
        raise MessageTooLarge(envelope.event_id, size, SNS_SIZE_LIMIT)

    # The entry id indexes the caller's sequence, so answers map back to
    # envelopes even if two envelopes shared an event id.
    entry: dict[str, Any] = {
        "Id": str(index),
        "Message": body,
        "MessageAttributes": attributes,
    }
    if is_fifo(topic_arn):
        entry["MessageGroupId"] = envelope.aggregate_id
        entry["MessageDeduplicationId"] = envelope.event_id
    return entry


def _wire_size(body: str, attributes: Mapping[str, Mapping[str, str]]) -> int:
    size = len(body.encode())
    for name, attribute in attributes.items():
        size += len(name.encode()) + len(attribute["DataType"].encode())
        size += len(attribute["StringValue"].encode())
    return size


def _chunks(
    topic_arn: str,
    envelopes: Sequence[Envelope],
    attributes: Sequence[Mapping[str, str] | None] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    chunk_size = 0
    for index, envelope in enumerate(envelopes):
        extra = attributes[index] if attributes else None
        entry = _entry(topic_arn, envelope, extra, index=index)
        size = _wire_size(entry["Message"], entry["MessageAttributes"])
        if chunk and (
            len(chunk) == SNS_BATCH_LIMIT or chunk_size + size > SNS_SIZE_LIMIT
        ):
            yield chunk
            chunk, chunk_size = [], 0
        chunk.append(entry)
        chunk_size += size
    if chunk:
        yield chunk
