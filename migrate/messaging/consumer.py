"""A blocking SQS consumer loop, for processes that are not Nameko services.

`consume` long-polls a queue and calls `handler(ReceivedMessage)` for each
message, one at a time, in the order SQS returned them. After each batch it
deletes the messages whose handler returned, in one DeleteMessageBatch call.

What it guarantees:

- A message is deleted only after its handler returned. A handler that
  raises leaves its message in the queue: SQS delivers it again after the
  queue's visibility timeout, and after the queue's maxReceiveCount receives
  moves it to the dead-letter queue. The failure is logged with the event id.
- A message that carries no envelope is logged and left alone, so it too
  ends in the dead-letter queue.
- When a message's last allowed receive (the queue's maxReceiveCount) fails,
  the consumer moves it to the dead-letter queue itself, with the handler's
  error as its `dead_letter_reason` (see `deadletters.bury`), so
  `migrate dlq` can say why.
- A handler raising `AlreadyHandled` (the unit of work found the event id in
  its inbox) counts as success: the duplicate is deleted.
- When `stop_event` is set mid-batch, the messages not yet handled are made
  visible again at once rather than after the visibility timeout.
- On a FIFO queue (`.fifo`), once a message fails the later messages of its
  group in the batch are not handled but handed back at once: SQS holds the
  group behind the failed message, which returns first. Order per group
  (per aggregate) holds through failures.
- An unreachable endpoint is logged and retried with capped backoff.
- Each message is counted in the process's metrics under its queue's name
  (`migrate_messages_total`: handled, duplicate, failed, malformed) with
  its handler's time (`migrate_message_duration_seconds`).

What it does not do: deduplicate (handlers do, by event id, through their
inbox), run handlers concurrently, or extend the visibility timeout of a
slow handler (a handler slower than the timeout sees its message twice).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from migrate.kernel.uow import AlreadyHandled
from migrate.messaging import deadletters, queue_ops
from migrate.messaging.errors import MalformedMessage
from migrate.messaging.message import ReceivedMessage
from migrate.observe import metrics, tracing

_log = logging.getLogger(__name__)

Handler = Callable[[ReceivedMessage], object]
_OUTCOMES = ("handled", "duplicate", "failed", "malformed")


def consume(
    sqs: BaseClient,
    queue_url: str,
    handler: Handler,
    stop_event: threading.Event,
    wait_seconds: int = 1,
    batch: int = 10,
    max_backoff: float = 5.0,
) -> int:
    """Consume until `stop_event` is set; return how many messages were
    handled and deleted."""
    handled = 0
    failed_polls = 0
    policy = _policy(sqs, queue_url)
    queue = _queue_name(queue_url)
    for outcome in _OUTCOMES:
        metrics.process("migrate_messages_total").labels(queue, outcome)
    metrics.process("migrate_message_duration_seconds").labels(queue)
    while not stop_event.is_set():
        try:
            handled += consume_once(
                sqs,
                queue_url,
                handler,
                wait_seconds=wait_seconds,
                batch=batch,
                stop_event=stop_event,
                policy=policy,
            )
        except (BotoCoreError, ClientError) as exc:
            failed_polls += 1
            delay = min(max_backoff, 0.2 * 2 ** min(failed_polls, 16))
            _log.warning(
                "cannot poll %s (attempt %d), retrying in %.1f s: %s",
                queue_url,
                failed_polls,
                delay,
                exc,
            )
            stop_event.wait(delay)
            continue

        if failed_polls:
            _log.info("polling %s again after %d failure(s)", queue_url, failed_polls)
            failed_polls = 0
    return handled


def consume_once(
    sqs: BaseClient,
    queue_url: str,
    handler: Handler,
    *,
    wait_seconds: int = 1,
    batch: int = 10,
    stop_event: threading.Event | None = None,
    policy: deadletters.RedrivePolicy | None = None,
) -> int:
    """One receive, its handlers, one batch delete; return how many were
    handled and deleted. With the queue's redrive `policy`, a message whose
    last allowed receive failed is dead-lettered with its reason."""
    messages = queue_ops.receive(
        sqs, queue_url, max_messages=batch, wait_seconds=wait_seconds
    )
    done: list[str] = []
    held_back: list[str] = []
    failed_groups: set[str] = set()
    fifo = queue_url.endswith(".fifo")
    for index, message in enumerate(messages):
        if stop_event is not None and stop_event.is_set():
            untouched = [m["ReceiptHandle"] for m in messages[index:]]
            queue_ops.release(sqs, queue_url, untouched + held_back)
            held_back = []
            break

        group = message.get("Attributes", {}).get("MessageGroupId")
        if fifo and group in failed_groups:
            # Behind a failed message of its group: it must not overtake it.
            held_back.append(message["ReceiptHandle"])
            continue

        reason = _outcome(handler, message, queue_url)
        if reason is None:
            done.append(message["ReceiptHandle"])
            continue

        if fifo:
            failed_groups.add(group)
        if policy is not None and deadletters.is_last_receive(policy, message):
            deadletters.bury(sqs, queue_url, policy, message, reason)
    if held_back:
        queue_ops.release(sqs, queue_url, held_back)
    if not done:
        return 0

    refused = queue_ops.delete(sqs, queue_url, done)
    return len(done) - len(refused)


def handle(handler: Handler, message: dict[str, Any], queue_url: str) -> bool:
    """Run the handler on one SQS message; True when it may be deleted."""
    return _outcome(handler, message, queue_url) is None


def _policy(sqs: BaseClient, queue_url: str) -> deadletters.RedrivePolicy | None:
    try:
        return deadletters.redrive_policy(sqs, queue_url)
    except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
        # SQS still dead-letters by itself; only the reason goes unrecorded.
        _log.warning("cannot read the redrive policy of %s: %s", queue_url, exc)
        return None


def _outcome(handler: Handler, message: dict[str, Any], queue_url: str) -> str | None:
    """None when the message may be deleted; otherwise why it may not."""
    queue = _queue_name(queue_url)
    counted = metrics.process("migrate_messages_total")
    try:
        received = ReceivedMessage.from_sqs(message)
    except MalformedMessage as exc:
        _log.error("leaving %s on %s for the dead-letter queue", exc, queue_url)
        counted.labels(queue, "malformed").inc()
        return f"not an event envelope: {exc}"

    started = time.perf_counter()
    try:
        # The handler's work continues the trace of the change it applies.
        with tracing.segment(
            header=received.trace_header, event_type=received.envelope.event_type
        ):
            first = _first_time(handler, received)
    # Whatever the handler raised, the message stays for redelivery.
    except Exception as error:  # noqa: BLE001
        _log.exception(
            "handler failed on event %s (%s, message %s, receive %d); "
            "it returns after the visibility timeout",
            received.event_id,
            received.envelope.event_type,
            received.message_id,
            received.receive_count,
        )
        counted.labels(queue, "failed").inc()
        return deadletters.failure(error)
    finally:
        metrics.process("migrate_message_duration_seconds").labels(queue).observe(
            time.perf_counter() - started
        )

    if not first:
        _log.debug("event %s was handled before; deleting it", received.event_id)
    counted.labels(queue, "handled" if first else "duplicate").inc()
    return None


def _queue_name(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def _first_time(handler: Handler, received: ReceivedMessage) -> bool:
    try:
        handler(received)
    except AlreadyHandled:
        return False

    return True
