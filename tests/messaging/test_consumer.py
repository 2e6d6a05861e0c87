from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from migrate.kernel.uow import AlreadyHandled
from migrate.messaging import deadletters, queue_ops
from migrate.messaging.clients import sqs_client
from migrate.messaging.consumer import consume, consume_once
from migrate.messaging.emulator import free_port
from migrate.messaging.message import ReceivedMessage
from migrate.messaging.publisher import SnsPublisher

from .helpers import depth, envelope, eventually


class Recorder:
    """A handler that remembers what it saw and fails when told to."""

    def __init__(self, fail_with: type[BaseException] | None = None):
        self.seen: list[ReceivedMessage] = []
        self.fail_with = fail_with

    def __call__(self, message: ReceivedMessage) -> None:
        self.seen.append(message)
        if self.fail_with is not None:
            raise self.fail_with(f"refusing {message.event_id}")


def wired(wire, **options: Any) -> tuple[str, str, str]:
    resources = wire(**options)
    (topic_arn,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    (dead_letter_url,) = resources.dead_letter_urls.values()
    return topic_arn, queue_url, dead_letter_url


def test_handled_messages_are_deleted(sns: Any, sqs: Any, wire) -> None:
    topic_arn, queue_url, _ = wired(wire)
    sent = [envelope(aggregate_id=str(n)) for n in range(3)]
    SnsPublisher(sns).publish_batch(topic_arn, sent)
    handler = Recorder()

    handled = consume_once(sqs, queue_url, handler)

    assert handled == 3
    assert {m.event_id for m in handler.seen} == {e.event_id for e in sent}
    assert depth(sqs, queue_url) == 0


def test_failing_message_returns_until_it_is_dead_lettered(
    sns: Any, sqs: Any, wire
) -> None:
    topic_arn, queue_url, dead_letter_url = wired(
        wire, dead_letter_after=2, visibility_timeout=1
    )
    poison = envelope()
    SnsPublisher(sns).publish(topic_arn, poison)
    handler = Recorder(fail_with=ValueError)

    eventually(
        lambda: (
            consume_once(sqs, queue_url, handler) == 0
            and depth(sqs, dead_letter_url) == 1
        )
    )

    assert [m.event_id for m in handler.seen] == [poison.event_id] * 2
    assert [m.receive_count for m in handler.seen] == [1, 2]
    assert depth(sqs, queue_url) == 0


def test_failing_handler_is_logged_with_the_event_id(
    sns: Any, sqs: Any, wire, caplog: pytest.LogCaptureFixture
) -> None:
    topic_arn, queue_url, _ = wired(wire)
    poison = envelope()
    SnsPublisher(sns).publish(topic_arn, poison)

    with caplog.at_level(logging.ERROR, logger="migrate.messaging.consumer"):
        consume_once(sqs, queue_url, Recorder(fail_with=RuntimeError))

    assert poison.event_id in caplog.text
    assert depth(sqs, queue_url) == 1


def test_duplicate_the_inbox_recognised_is_deleted(sns: Any, sqs: Any, wire) -> None:
    topic_arn, queue_url, _ = wired(wire)
    SnsPublisher(sns).publish(topic_arn, envelope())

    handled = consume_once(sqs, queue_url, Recorder(fail_with=AlreadyHandled))

    assert handled == 1
    assert depth(sqs, queue_url) == 0


def test_message_without_an_envelope_is_left_for_the_dead_letter_queue(
    sqs: Any, wire
) -> None:
    _, queue_url, _ = wired(wire)
    sqs.send_message(QueueUrl=queue_url, MessageBody="not an event")
    handler = Recorder()

    handled = consume_once(sqs, queue_url, handler)

    assert handled == 0
    assert handler.seen == []
    assert depth(sqs, queue_url) == 1


def test_consume_returns_once_stopped(sns: Any, sqs: Any, wire) -> None:
    topic_arn, queue_url, _ = wired(wire)
    SnsPublisher(sns).publish(topic_arn, envelope())
    handler = Recorder()
    stop = threading.Event()
    totals: list[int] = []
    loop = threading.Thread(
        target=lambda: totals.append(consume(sqs, queue_url, handler, stop))
    )
    loop.start()
    eventually(lambda: handler.seen)

    stop.set()
    loop.join(5)

    assert not loop.is_alive()
    assert totals == [1]


def test_consume_keeps_polling_while_the_endpoint_is_down() -> None:
    dead = sqs_client(f"http://127.0.0.1:{free_port()}")
    stop = threading.Event()
    loop = threading.Thread(
        target=consume,
        args=(dead, "http://127.0.0.1:1/123456789012/gone", Recorder(), stop),
        kwargs={"max_backoff": 0.2},
    )
    loop.start()

    stop.wait(1.0)
    survived = loop.is_alive()
    stop.set()
    loop.join(5)

    assert survived
    assert not loop.is_alive()


def test_a_message_failing_its_last_receive_is_dead_lettered_with_the_error(
    sns: Any, sqs: Any, wire
) -> None:
    topic_arn, queue_url, dead_letter_url = wired(
        wire, dead_letter_after=2, visibility_timeout=1
    )
    poison = envelope()
    SnsPublisher(sns).publish(topic_arn, poison)
    policy = deadletters.redrive_policy(sqs, queue_url)
    handler = Recorder(fail_with=ValueError)

    eventually(
        lambda: (
            consume_once(sqs, queue_url, handler, policy=policy) == 0
            and depth(sqs, dead_letter_url) == 1
        )
    )

    (letter,) = deadletters.peek(sqs, "inbox", dead_letter_url)
    assert letter.event_id == poison.event_id
    assert letter.reason == f"ValueError: refusing {poison.event_id}"
    assert letter.receive_count == 2
    assert depth(sqs, queue_url) == 0


def test_a_body_without_an_envelope_is_dead_lettered_saying_so(sqs: Any, wire) -> None:
    _, queue_url, dead_letter_url = wired(wire, dead_letter_after=1)
    sqs.send_message(QueueUrl=queue_url, MessageBody="not an event")
    policy = deadletters.redrive_policy(sqs, queue_url)

    consume_once(sqs, queue_url, Recorder(), policy=policy)

    (letter,) = deadletters.peek(sqs, "inbox", dead_letter_url)
    assert letter.event_id is None
    assert letter.reason.startswith("not an event envelope:")
    assert letter.receive_count == 1


def test_a_dead_letter_that_sqs_moved_itself_says_no_reason_was_recorded(
    sns: Any, sqs: Any, wire
) -> None:
    topic_arn, queue_url, dead_letter_url = wired(
        wire, dead_letter_after=1, visibility_timeout=1
    )
    SnsPublisher(sns).publish(topic_arn, envelope())
    # A consumer that died holding it: no delete, no reason.
    eventually(lambda: sqs.receive_message(QueueUrl=queue_url).get("Messages"))
    eventually(
        lambda: (
            not sqs.receive_message(QueueUrl=queue_url).get("Messages")
            and depth(sqs, dead_letter_url) == 1
        ),
        timeout=20,
    )

    (letter,) = deadletters.peek(sqs, "inbox", dead_letter_url)
    assert letter.reason.startswith("no reason recorded: received")


def test_a_redriven_dead_letter_goes_back_without_its_reason(
    sns: Any, sqs: Any, wire
) -> None:
    topic_arn, queue_url, dead_letter_url = wired(wire, dead_letter_after=1)
    SnsPublisher(sns).publish(topic_arn, envelope())
    policy = deadletters.redrive_policy(sqs, queue_url)
    consume_once(sqs, queue_url, Recorder(fail_with=ValueError), policy=policy)

    moved = deadletters.redrive(sqs, dead_letter_url, queue_url)

    (back,) = eventually(lambda: queue_ops.receive(sqs, queue_url))
    assert moved == 1
    assert deadletters.REASON not in back["MessageAttributes"]
    assert ReceivedMessage.from_sqs(back).envelope.event_type == "InvoiceIssued"


def test_on_a_fifo_queue_a_failure_holds_back_the_rest_of_its_group(
    sns: Any, sqs: Any, wire
) -> None:
    topic_arn, queue_url, _ = wired(wire, fifo=True, visibility_timeout=1)
    sent = [
        envelope(aggregate_id=aggregate, n=n)
        for n in (1, 2)
        for aggregate in ("A", "B")
    ]
    SnsPublisher(sns).publish_batch(topic_arn, sent)
    seen: list[tuple[str, int]] = []

    def handler(message: ReceivedMessage) -> None:
        tag = f"{message.envelope.aggregate_id}{message.envelope.data['n']}"
        seen.append((tag, message.receive_count))
        if tag == "A1" and message.receive_count == 1:
            raise ValueError("A1 fails the first time")

    handled: list[int] = []
    eventually(
        lambda: (
            handled.append(consume_once(sqs, queue_url, handler)) or sum(handled) == 4
        ),
        timeout=20,
    )

    tags = [tag for tag, _ in seen]
    assert tags.index("A2") > tags.index("A1", 1)  # after A1's second receive
    assert tags.count("A2") == 1
    assert tags.index("B1") < tags.index("B2")
    assert seen[:3] == [("A1", 1), ("B1", 1), ("B2", 1)]
