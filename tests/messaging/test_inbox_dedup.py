"""The inbox claims event ids: a repeat changes nothing, a new event counts.

The handler here is deliberately not idempotent by business key: it adds
each payment's amount to its customer's running tally, so applying one
event twice would count the money twice. Only the unit of work's claim of
the event id in the inbox stands between a repeat and a wrong tally.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa

from migrate.kernel.events import Envelope, Event
from migrate.kernel.sql import create_engine, inbox_table, outbox_table
from migrate.kernel.uow import UnitOfWork
from migrate.messaging import queue_ops
from migrate.messaging.consumer import consume_once, handle
from migrate.messaging.message import ReceivedMessage
from migrate.messaging.publisher import SnsPublisher

from .helpers import eventually

metadata = sa.MetaData()
tally = sa.Table(
    "payment_tally",
    metadata,
    sa.Column("customer_id", sa.String(5), primary_key=True),
    sa.Column("received_cents", sa.BigInteger, nullable=False),
)
outbox_table(metadata, "ledger")
inbox = inbox_table(metadata, "ledger")
CONSUMER = "ledger.add_to_tally"


class LedgerUnitOfWork(UnitOfWork):
    context = "ledger"


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    metadata.create_all(engine)
    with engine.begin() as db:
        db.execute(tally.insert().values(customer_id="ALFKI", received_cents=0))
    return engine


def add_to_tally(engine: sa.Engine, seen: list[str]) -> Any:
    """Add a PaymentReceived's amount to its customer's tally, claiming the
    event id; record each SQS message id it was handed."""

    def handler(message: ReceivedMessage) -> None:
        seen.append(message.message_id)
        data = message.envelope.data
        uow = LedgerUnitOfWork(
            engine, "ledger", command=False, claim=(CONSUMER, message.event_id)
        )
        with uow:
            uow.connection.execute(
                tally.update()
                .where(tally.c.customer_id == data["customer_id"])
                .values(received_cents=tally.c.received_cents + data["amount_cents"])
            )
            uow.commit()

    return handler


@dataclasses.dataclass(frozen=True)
class PaymentReceived(Event):
    context: ClassVar[str] = "billing"

    payment_id: str
    customer_id: str
    amount_cents: int

    @property
    def aggregate_id(self) -> str:
        return self.payment_id


def payment(payment_id: str = "pay-1", cents: int = 1250) -> Envelope:
    return Envelope.wrap(PaymentReceived(payment_id, "ALFKI", cents), "monolith")


def received(engine: sa.Engine) -> int:
    with engine.connect() as db:
        return int(db.execute(sa.select(tally.c.received_cents)).scalar_one())


def claims(engine: sa.Engine) -> int:
    with engine.connect() as db:
        return int(
            db.execute(sa.select(sa.func.count()).select_from(inbox)).scalar_one()
        )


def consume_until(sqs: Any, queue_url: str, handler: Any, count: int) -> None:
    handled: list[int] = []
    eventually(
        lambda: (
            handled.append(consume_once(sqs, queue_url, handler))
            or sum(handled) >= count
        ),
        timeout=20,
    )


def test_a_republished_event_reaches_the_handler_again_and_counts_once(
    sns: Any, sqs: Any, wire: Any, engine: sa.Engine
) -> None:
    resources = wire()
    (topic_arn,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    seen: list[str] = []
    handler = add_to_tally(engine, seen)
    event = payment()

    SnsPublisher(sns).publish(topic_arn, event)
    consume_until(sqs, queue_url, handler, 1)
    # A relay that died before stamping its row publishes the row again.
    SnsPublisher(sns).publish(topic_arn, event)
    consume_until(sqs, queue_url, handler, 1)

    assert len(seen) == 2 and seen[0] != seen[1]
    assert received(engine) == 1250
    assert claims(engine) == 1


def test_a_redelivered_message_whose_delete_was_lost_counts_once(
    sns: Any, sqs: Any, wire: Any, engine: sa.Engine
) -> None:
    resources = wire(visibility_timeout=1)
    (topic_arn,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    seen: list[str] = []
    handler = add_to_tally(engine, seen)
    SnsPublisher(sns).publish(topic_arn, payment())

    # Handled, then the consumer dies before its delete: SQS delivers again.
    (first,) = eventually(lambda: queue_ops.receive(sqs, queue_url), timeout=20)
    assert handle(handler, first, queue_url)
    time.sleep(1.2)
    consume_until(sqs, queue_url, handler, 1)

    assert seen[0] == seen[1]
    assert received(engine) == 1250
    assert claims(engine) == 1


def test_two_events_with_the_same_business_key_but_their_own_ids_both_count(
    sns: Any, sqs: Any, wire: Any, engine: sa.Engine
) -> None:
    resources = wire()
    (topic_arn,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    handler = add_to_tally(engine, [])
    first, second = payment("pay-1"), payment("pay-1")

    SnsPublisher(sns).publish_batch(topic_arn, [first, second])
    consume_until(sqs, queue_url, handler, 2)

    assert first.event_id != second.event_id
    assert received(engine) == 2500
    assert claims(engine) == 2
