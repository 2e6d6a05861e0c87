from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migrate.kernel.events import Envelope
from migrate.kernel.sql import create_engine, outbox_table
from migrate.messaging.clients import sns_client, sqs_client
from migrate.messaging.emulator import Emulator, free_port
from migrate.messaging.errors import OutboxRowMalformed, RelayIncomplete, RouteInvalid
from migrate.messaging.message import ReceivedMessage
from migrate.messaging.publisher import SnsPublisher
from migrate.messaging.relay import OutboxRelay, main, parse_route
from migrate.messaging.topology import Queue, Subscription, Topic, Topology, ensure

from .helpers import depth, drain, envelope, eventually

REPOSITORY = Path(__file__).resolve().parents[2]


class Outboxes:
    """Outbox tables in a SQLite file, made by `outbox_table`."""

    def __init__(self, path: Path, *contexts: str):
        self.url = f"sqlite:///{path}"
        self.engine = create_engine(self.url)
        metadata = sa.MetaData()
        self.tables = {c: outbox_table(metadata, c) for c in contexts}
        metadata.create_all(self.engine)

    def append(self, context: str, event: Envelope, payload: str | None = None) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                self.tables[context]
                .insert()
                .values(
                    event_id=event.event_id,
                    event_type=event.event_type,
                    aggregate_id=event.aggregate_id,
                    schema_version=event.schema_version,
                    origin=event.origin,
                    occurred_at=event.occurred_at,
                    payload=event.to_json() if payload is None else payload,
                )
            )

    def stamped(self, context: str) -> list[bool]:
        table = self.tables[context]
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(table.c.published_at).order_by(table.c.position)
            ).all()
        return [row.published_at is not None for row in rows]

    def unstamp(self, context: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(self.tables[context].update().values(published_at=None))


@pytest.fixture
def outboxes(tmp_path: Path) -> Outboxes:
    return Outboxes(tmp_path / "monolith.db", "billing", "ordering")


def test_relay_publishes_in_position_order_and_stamps_each_row(
    sns: Any, sqs: Any, wire, outboxes: Outboxes
) -> None:
    resources = wire(fifo=True)
    (topic_arn,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    events = [envelope(aggregate_id="10248", line=n) for n in range(7)]
    for event in events:
        outboxes.append("billing", event)
    relay = OutboxRelay(outboxes.engine, {"billing": topic_arn}, SnsPublisher(sns), 3)

    published = relay.relay_once()

    received: list[ReceivedMessage] = []
    while len(received) < len(events):
        batch = drain(sqs, queue_url, 1)
        assert batch, "the FIFO queue ran dry early"
        received.extend(ReceivedMessage.from_sqs(m) for m in batch)
        for message in batch:
            sqs.delete_message(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    assert published == 7
    assert [r.event_id for r in received] == [e.event_id for e in events]
    assert outboxes.stamped("billing") == [True] * 7
    assert relay.backlog() == {"billing": 0}


def test_stamped_rows_are_not_published_again(
    sns: Any, wire, outboxes: Outboxes
) -> None:
    (topic_arn,) = wire().topic_arns.values()
    outboxes.append("billing", envelope())
    relay = OutboxRelay(outboxes.engine, {"billing": topic_arn}, SnsPublisher(sns))
    relay.relay_once()

    assert relay.relay_once() == 0


def test_row_left_unstamped_by_a_crash_goes_out_again_with_its_event_id(
    sns: Any, sqs: Any, wire, outboxes: Outboxes
) -> None:
    resources = wire()
    (topic_arn,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    event = envelope()
    outboxes.append("billing", event)
    relay = OutboxRelay(outboxes.engine, {"billing": topic_arn}, SnsPublisher(sns))
    relay.relay_once()
    outboxes.unstamp("billing")

    relay.relay_once()

    copies = [ReceivedMessage.from_sqs(m) for m in drain(sqs, queue_url, 2)]
    assert [c.event_id for c in copies] == [event.event_id, event.event_id]
    assert copies[0].message_id != copies[1].message_id


def test_malformed_row_holds_back_its_outbox_but_not_the_others(
    sns: Any, wire, outboxes: Outboxes
) -> None:
    (topic_arn,) = wire().topic_arns.values()
    outboxes.append("billing", envelope())
    outboxes.append("billing", envelope(), payload="{not json")
    outboxes.append("billing", envelope())
    outboxes.append("ordering", envelope(context="ordering"))
    relay = OutboxRelay(
        outboxes.engine,
        {"billing": topic_arn, "ordering": topic_arn},
        SnsPublisher(sns),
    )

    with pytest.raises(RelayIncomplete) as incomplete:
        relay.relay_once()

    assert incomplete.value.published == 2
    assert isinstance(incomplete.value.failures["billing"], OutboxRowMalformed)
    assert "row 2" in str(incomplete.value)
    assert outboxes.stamped("billing") == [True, False, False]
    assert outboxes.stamped("ordering") == [True]


class _WaitWhile:
    """A publisher that holds its calls while the topology is being built.

    `ensure` creates a topic before subscribing its queues; a relay that
    published in between would reach a topic with no subscriber yet. On a
    real deployment the topology exists before any relay starts.
    """

    def __init__(self, building: threading.Event, publisher: SnsPublisher):
        self._building = building
        self._publisher = publisher

    def publish_batch(self, topic_arn: str, envelopes: Any, attributes: Any) -> Any:
        while self._building.is_set():
            time.sleep(0.01)
        return self._publisher.publish_batch(topic_arn, envelopes, attributes)


def test_relay_outlives_a_missing_emulator_and_catches_up_when_it_starts(
    outboxes: Outboxes,
) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    topology = Topology(
        [Topic("billing-late")],
        [Queue("shipping-late")],
        [Subscription("billing-late", "shipping-late")],
    )
    topic_arn = "arn:aws:sns:us-east-1:123456789012:billing-late"
    outboxes.append("billing", envelope())
    building = threading.Event()
    relay = OutboxRelay(
        outboxes.engine,
        {"billing": topic_arn},
        _WaitWhile(building, SnsPublisher(sns_client(endpoint))),
    )
    stop = threading.Event()
    runner = threading.Thread(
        target=relay.run, args=(stop,), kwargs={"max_backoff": 0.5}
    )
    runner.start()
    try:
        stop.wait(1.0)
        assert runner.is_alive()
        assert outboxes.stamped("billing") == [False]

        building.set()
        with Emulator(port=port):
            sqs = sqs_client(endpoint)
            resources = ensure(topology, sns_client(endpoint), sqs)
            building.clear()
            eventually(lambda: outboxes.stamped("billing") == [True])
            arrived = depth(sqs, resources.queue_url("shipping-late"))
    finally:
        stop.set()
        runner.join(10)

    assert not runner.is_alive()
    assert arrived == 1


def test_relay_command_relays_and_stops_cleanly_on_sigterm(
    emulator: Emulator, sqs: Any, wire, outboxes: Outboxes
) -> None:
    resources = wire()
    (topic_arn,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    outboxes.append("billing", envelope())
    command = [
        sys.executable, "-m", "migrate.messaging.relay",
        "--database", outboxes.url,
        "--route", f"billing={topic_arn}",
        "--endpoint", emulator.endpoint_url,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: outboxes.stamped("billing") == [True])

        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    finally:
        process.kill()
        log = process.stderr.read() if process.stderr else ""

    assert code == 0, log
    assert depth(sqs, queue_url) == 1


def test_route_without_a_topic_arn_is_refused() -> None:
    with pytest.raises(RouteInvalid, match="CONTEXT=TOPIC_ARN"):
        parse_route("billing")


def test_relay_command_with_a_bad_route_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--database", f"sqlite:///{tmp_path / 'x.db'}", "--route", "Billing=x"]
    )

    assert code == 2
    assert "Billing" in capsys.readouterr().err
