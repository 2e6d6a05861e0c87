"""How full each queue and its dead-letter queue are, from the emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from migrate.messaging.topology import Queue, Resources
from migrate.observe.readings import QueueDepth, queue_depths


def test_depths_count_waiting_messages_and_dead_letters(
    wire: Callable[..., Resources], sqs: Any,
) -> None:
    resources = wire()
    (name,) = resources.queue_urls
    for body in ("one", "two"):
        sqs.send_message(QueueUrl=resources.queue_url(name), MessageBody=body)
    sqs.send_message(QueueUrl=resources.dead_letter_url(name), MessageBody="poison")

    (found,) = queue_depths(sqs, [Queue(name)])

    assert found == QueueDepth(name, 2, 0, 1)


def test_a_queue_that_does_not_exist_is_reported_missing(
    sqs: Any, name: Callable[[str], str],
) -> None:
    missing = name("never-made")

    (found,) = queue_depths(sqs, [Queue(missing)])

    assert found == QueueDepth(missing, None, None, None)
