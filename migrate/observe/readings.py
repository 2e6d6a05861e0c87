"""Readings of the system's state that metrics report: outbox backlogs,
queue depths (sync lag is `migrate.sync.lag`'s). Each is read when asked
(a scrape), never cached.

Queue depths are SQS's approximate counts, as CloudWatch reports them;
on the emulator they are exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import sqlalchemy as sa
from botocore.client import BaseClient
from sqlalchemy.engine import Engine

from migrate.kernel.uow import queue_tables


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
