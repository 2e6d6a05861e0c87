"""SNS to SQS through the emulator: what consumers actually receive."""

from __future__ import annotations

import dataclasses
from typing import Any

from migrate.messaging.message import RAW, SNS_NOTIFICATION, ReceivedMessage
from migrate.messaging.publisher import SnsPublisher

from .helpers import depth, drain, envelope


def only_queue(resources) -> tuple[str, str]:
    (topic_arn,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    return topic_arn, queue_url


def test_raw_delivery_carries_the_envelope_and_its_attributes(
    sns: Any, sqs: Any, wire
) -> None:
    topic_arn, queue_url = only_queue(wire())
    sent = envelope()

    SnsPublisher(sns).publish(topic_arn, sent)

    (message,) = drain(sqs, queue_url, 1)
    received = ReceivedMessage.from_sqs(message)
    assert received.delivery == RAW
    assert received.envelope == sent
    assert received.attributes == sent.attributes()
    assert message["MessageAttributes"]["schema_version"]["DataType"] == "Number"
    assert received.receive_count == 1


def test_sns_notification_form_parses_to_the_same_envelope(
    sns: Any, sqs: Any, wire
) -> None:
    topic_arn, queue_url = only_queue(wire(raw=False))
    sent = envelope()

    SnsPublisher(sns).publish(topic_arn, sent)

    (message,) = drain(sqs, queue_url, 1)
    received = ReceivedMessage.from_sqs(message)
    assert received.delivery == SNS_NOTIFICATION
    assert received.envelope == sent
    assert received.attributes == sent.attributes()


def test_filter_policy_lets_only_matching_events_through(
    sns: Any, sqs: Any, wire
) -> None:
    topic_arn, queue_url = only_queue(
        wire(filter_policy={"event_type": ["InvoiceIssued"]})
    )
    issued, paid = envelope("InvoiceIssued"), envelope("InvoicePaid")

    SnsPublisher(sns).publish_batch(topic_arn, [paid, issued])

    received = [ReceivedMessage.from_sqs(m) for m in drain(sqs, queue_url, 1)]
    assert [r.event_id for r in received] == [issued.event_id]
    assert depth(sqs, queue_url) == 1


def test_numeric_filter_policy_matches_the_schema_version(
    sns: Any, sqs: Any, wire
) -> None:
    topic_arn, queue_url = only_queue(
        wire(filter_policy={"schema_version": [{"numeric": [">=", 2]}]})
    )
    old, new = envelope(), dataclasses.replace(envelope(), schema_version=2)

    SnsPublisher(sns).publish_batch(topic_arn, [old, new])

    received = [ReceivedMessage.from_sqs(m) for m in drain(sqs, queue_url, 1)]
    assert [r.event_id for r in received] == [new.event_id]
    assert depth(sqs, queue_url) == 1


def test_fifo_topic_keeps_one_aggregates_events_in_order(
    sns: Any, sqs: Any, wire
) -> None:
    topic_arn, queue_url = only_queue(wire(fifo=True))
    sent = [envelope(aggregate_id="10248", step=step) for step in range(12)]

    SnsPublisher(sns).publish_batch(topic_arn, sent)

    messages: list[dict[str, Any]] = []
    while len(messages) < len(sent):
        batch = drain(sqs, queue_url, 1)
        assert batch, "the FIFO queue ran dry early"
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(batch)
            ],
        )
    received = [ReceivedMessage.from_sqs(m) for m in messages]
    assert [r.event_id for r in received] == [e.event_id for e in sent]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"10248"}
    assert messages[0]["Attributes"]["MessageDeduplicationId"] == sent[0].event_id
