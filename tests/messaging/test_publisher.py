from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from migrate.messaging.errors import MessageTooLarge, PublishFailed
from migrate.messaging.message import ReceivedMessage
from migrate.messaging.publisher import SnsPublisher, message_attributes

from .helpers import drain, envelope


def test_batch_of_more_than_ten_is_published_whole(sns: Any, sqs: Any, wire) -> None:
    resources = wire()
    (topic_arn,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    sent = [envelope(aggregate_id=str(n)) for n in range(13)]

    message_ids = SnsPublisher(sns).publish_batch(topic_arn, sent)

    received = [ReceivedMessage.from_sqs(m) for m in drain(sqs, queue_url, 13)]
    assert len(set(message_ids)) == 13
    assert {r.event_id for r in received} == {e.event_id for e in sent}


def test_refused_entry_names_the_event_and_what_went_out_before_it(
    sns: Any, wire
) -> None:
    (topic_arn,) = wire(fifo=True).topic_arns.values()
    first, nameless, last = envelope(), envelope(aggregate_id=""), envelope()

    with pytest.raises(PublishFailed) as failed:
        SnsPublisher(sns).publish_batch(topic_arn, [first, nameless, last])

    assert nameless.event_id in failed.value.failures
    assert failed.value.published == [first.event_id]


def test_envelope_over_the_sns_limit_is_refused_before_sending(sns: Any) -> None:
    huge = envelope(note="x" * 300_000)

    with pytest.raises(MessageTooLarge, match=huge.event_id):
        SnsPublisher(sns).publish("arn:aws:sns:us-east-1:123456789012:any", huge)


def test_empty_attribute_is_left_out_because_sns_refuses_it() -> None:
    blank = dataclasses.replace(envelope(), origin="")

    attributes = message_attributes(blank)

    assert "origin" not in attributes
    assert attributes["schema_version"] == {"DataType": "Number", "StringValue": "1"}


def test_single_publish_carries_extra_attributes(sns: Any, sqs: Any, wire) -> None:
    resources = wire()
    (topic_arn,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()

    SnsPublisher(sns).publish(
        topic_arn, envelope(), attributes={"trace_header": "Root=1-abc"}
    )

    (message,) = drain(sqs, queue_url, 1)
    assert ReceivedMessage.from_sqs(message).attributes["trace_header"] == "Root=1-abc"
