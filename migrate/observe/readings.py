"""Readings of the system's state that metrics and the dashboard report:
outbox backlogs, queue depths (sync lag is `migrate.sync.lag`'s). Each is
read when asked, never cached here.

Queue depths are SQS's approximate counts, as CloudWatch reports them;
on the emulator they are exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from botocore.client import BaseClient
from sqlalchemy.engine import Engine

from migrate.kernel.uow import queue_tables

if TYPE_CHECKING:
    from migrate.messaging.topology import Queue


def outbox_backlog(engine: Engine, contexts: Iterable[str]) -> dict[str, int]:
    """Unpublished outbox rows per context in one database; a context whose
    outbox table does not exist there is left out."""
    found: dict[str, int] = {}
    existing = set(sa.inspect(engine).get_table_names())
    with engine.connect() as db:
        for context in contexts:
            outbox, _ = queue_tables(context)
            if outbox.name not in existing:
                continue
            found[context] = db.execute(
                sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))
            ).scalar_one()
    return found


@dataclasses.dataclass(frozen=True)
class Depth:
    visible: int
    in_flight: int


def queue_depth(sqs: BaseClient, url: str) -> Depth:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
        ],
    )["Attributes"]
    return Depth(
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


@dataclasses.dataclass(frozen=True)
class QueueDepth:
    """A declared queue's counts; None where the queue does not exist."""

    queue: str
    waiting: int | None
    in_flight: int | None
    dead_letters: int | None


def queue_depths(sqs: BaseClient, queues: Iterable[Queue]) -> list[QueueDepth]:
    """How full each declared queue and its dead-letter queue are; a
    dead letter being looked at (`migrate dlq`) still counts."""
    found = []
    for queue in queues:
        depth = _depth_of(sqs, queue.aws_name)
        letters = _depth_of(sqs, queue.dead_letter_aws_name)
        found.append(QueueDepth(
            queue.name,
            None if depth is None else depth.visible,
            None if depth is None else depth.in_flight,
            None if letters is None else letters.visible + letters.in_flight,
        ))
    return found


def _depth_of(sqs: BaseClient, aws_name: str) -> Depth | None:
    try:
        url = sqs.get_queue_url(QueueName=aws_name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return None

    return queue_depth(sqs, url)
