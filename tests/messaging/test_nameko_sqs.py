"""The `consume` entrypoint inside a real `nameko run` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.messaging import deadletters
from migrate.messaging.clients import sns_client, sqs_client
from migrate.messaging.emulator import Emulator
from migrate.messaging.publisher import SnsPublisher
from migrate.messaging.topology import (
    Queue,
    Resources,
    Subscription,
    Topic,
    Topology,
    ensure,
)

from .helpers import depth, envelope, eventually

REPOSITORY = Path(__file__).resolve().parents[2]
NAMEKO = Path(sys.executable).with_name("nameko")

SERVICE = """
import time

from migrate.messaging.nameko_sqs import consume


class Shipping:
    name = "shipping"

    @consume({queue!r})
    def on_billing_event(self, message):
        with open({seen!r}, "a") as out:
            out.write(f"start {{message.event_id}} {{message.receive_count}}\\n")
        time.sleep(message.envelope.data.get("linger", 0))
        with open({seen!r}, "a") as out:
            out.write(f"end {{message.event_id}}\\n")
        if message.envelope.data.get("refuse"):
            raise ValueError(f"refusing {{message.event_id}}")
"""


class Service:
    """A `nameko run` process hosting the Shipping service."""

    def __init__(self, process: subprocess.Popen[str], seen: Path, log: Path):
        self.process = process
        self.seen = seen
        self.log = log

    def lines(self, kind: str) -> list[list[str]]:
        if not self.seen.exists():
            return []

        return [
            line.split()[1:]
            for line in self.seen.read_text().splitlines()
            if line.startswith(kind + " ")
        ]


@pytest.fixture
def feed(wire) -> Resources:
    return wire(dead_letter_after=2, visibility_timeout=1)


def start_service(emulator: Emulator, queue_name: str, tmp_path: Path) -> Service:
    seen, log = tmp_path / "seen.txt", tmp_path / "nameko.log"
    (tmp_path / "shipping_service.py").write_text(
        textwrap.dedent(SERVICE).format(queue=queue_name, seen=str(seen))
    )
    config = {
        "SQS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_REGION": "us-east-1",
        "max_workers": 2,
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with open(log, "w") as output:
        process = subprocess.Popen(
            [str(NAMEKO), "run", "--config", "config.yaml", "shipping_service"],
            cwd=tmp_path,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPOSITORY)]),
            },
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return Service(process, seen, log)


@pytest.fixture
def service(emulator: Emulator, feed: Resources, tmp_path: Path) -> Iterator[Service]:
    (queue_url,) = feed.queue_urls.values()
    running = start_service(emulator, queue_url.rsplit("/", 1)[-1], tmp_path)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
        running.process.wait(10)


def publish(sns: Any, feed: Resources, *events: Any) -> None:
    (topic_arn,) = feed.topic_arns.values()
    SnsPublisher(sns).publish_batch(topic_arn, list(events))


def test_service_handles_a_published_event_and_deletes_it(
    sns: Any, sqs: Any, feed: Resources, service: Service
) -> None:
    (queue_url,) = feed.queue_urls.values()
    sent = envelope()

    publish(sns, feed, sent)

    eventually(lambda: service.lines("end"), timeout=30)
    eventually(lambda: depth(sqs, queue_url) == 0)
    assert service.lines("start") == [[sent.event_id, "1"]]


def test_a_worker_slower_than_the_visibility_timeout_keeps_its_message(
    sns: Any, sqs: Any, feed: Resources, service: Service
) -> None:
    (queue_url,) = feed.queue_urls.values()
    slow = envelope(linger=3.5)  # the queue hides a message for 1 s

    publish(sns, feed, slow)

    eventually(lambda: service.lines("end"), timeout=30)
    eventually(lambda: depth(sqs, queue_url) == 0)
    time.sleep(1.5)
    assert service.lines("start") == [[slow.event_id, "1"]]


def test_message_whose_worker_raised_is_not_deleted_and_ends_dead_lettered(
    sns: Any, sqs: Any, feed: Resources, service: Service
) -> None:
    (queue_url,) = feed.queue_urls.values()
    (dead_letter_url,) = feed.dead_letter_urls.values()
    poison = envelope(refuse=True)

    publish(sns, feed, poison)

    eventually(lambda: depth(sqs, dead_letter_url) == 1, timeout=30)
    assert service.lines("start") == [[poison.event_id, "1"], [poison.event_id, "2"]]
    assert depth(sqs, queue_url) == 0
    (letter,) = deadletters.peek(sqs, "inbox", dead_letter_url)
    assert letter.reason == f"ValueError: refusing {poison.event_id}"
    assert letter.receive_count == 2


def test_service_holds_no_more_messages_than_it_has_workers(
    sns: Any, sqs: Any, feed: Resources, service: Service
) -> None:
    (queue_url,) = feed.queue_urls.values()
    (dead_letter_url,) = feed.dead_letter_urls.values()
    events = [envelope(aggregate_id=str(n), linger=0.3) for n in range(6)]
    publish(sns, feed, *events)
    in_flight: list[int] = []

    while len(service.lines("end")) < len(events):
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        in_flight.append(int(attributes["ApproximateNumberOfMessagesNotVisible"]))
        assert service.process.poll() is None, service.log.read_text()
        time.sleep(0.05)

    assert 0 < max(in_flight) <= 2
    eventually(lambda: depth(sqs, queue_url) == 0)
    assert depth(sqs, dead_letter_url) == 0


def test_service_stops_promptly_on_sigterm(
    sns: Any, feed: Resources, service: Service
) -> None:
    publish(sns, feed, envelope())
    eventually(lambda: service.lines("end"), timeout=30)
    started = time.monotonic()

    service.process.send_signal(signal.SIGTERM)
    code = service.process.wait(timeout=15)

    assert code == 0, service.log.read_text()
    assert time.monotonic() - started < 5


def test_worker_running_at_sigterm_finishes_and_its_message_is_deleted(
    sns: Any, sqs: Any, feed: Resources, service: Service
) -> None:
    (queue_url,) = feed.queue_urls.values()
    publish(sns, feed, envelope(linger=0.8))
    eventually(lambda: service.lines("start"), timeout=30)

    service.process.send_signal(signal.SIGTERM)
    code = service.process.wait(timeout=15)

    assert code == 0, service.log.read_text()
    assert len(service.lines("end")) == 1
    assert depth(sqs, queue_url) == 0


def test_service_consuming_an_unknown_queue_refuses_to_start(
    emulator: Emulator, tmp_path: Path
) -> None:
    service = start_service(emulator, "nowhere-to-be-found", tmp_path)
    try:
        code = service.process.wait(timeout=30)
    finally:
        if service.process.poll() is None:
            service.process.kill()

    assert code != 0
    assert "queue 'nowhere-to-be-found' not found" in service.log.read_text()


def test_service_resumes_after_the_emulator_restarts(tmp_path: Path) -> None:
    topology = Topology(
        [Topic("billing-events")],
        [Queue("shipping-inbox")],
        [Subscription("billing-events", "shipping-inbox")],
    )
    with Emulator() as emulator:
        sns, sqs = sns_client(emulator.endpoint_url), sqs_client(emulator.endpoint_url)
        ensure(topology, sns, sqs)
        service = start_service(emulator, "shipping-inbox", tmp_path)
        try:
            eventually(lambda: "consuming" in service.log.read_text(), timeout=30)
            emulator.restart()
            resources = ensure(topology, sns, sqs)
            sent = envelope()

            SnsPublisher(sns).publish(resources.topic_arn("billing-events"), sent)

            eventually(lambda: service.lines("end"), timeout=30)
            assert service.lines("start") == [[sent.event_id, "1"]]
            assert service.process.poll() is None
        finally:
            service.process.kill()
            service.process.wait(10)


TWO_QUEUES = """
from migrate.messaging.nameko_sqs import consume


class Billing:
    name = "billing"

    @consume({busy!r})
    def on_busy(self, message):
        with open({seen!r}, "a") as out:
            out.write(f"end {{message.event_id}}\\n")

    @consume({idle!r})
    def on_idle(self, message):
        pass
"""


def test_an_idle_queue_does_not_starve_a_busy_one_of_workers(
    emulator: Emulator, sns: Any, sqs: Any, wire: Any, tmp_path: Path
) -> None:
    busy = wire()
    (busy_url,) = busy.queue_urls.values()
    idle_url = sqs.create_queue(QueueName=f"idle-{tmp_path.name}"[:80])["QueueUrl"]
    seen = tmp_path / "seen.txt"
    (tmp_path / "billing_service.py").write_text(
        textwrap.dedent(TWO_QUEUES).format(
            busy=busy_url.rsplit("/", 1)[-1],
            idle=idle_url.rsplit("/", 1)[-1],
            seen=str(seen),
        )
    )
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({"SQS_ENDPOINT_URL": emulator.endpoint_url, "max_workers": 10})
    )
    events = [envelope(aggregate_id=str(n)) for n in range(40)]
    publish(sns, busy, *events)
    process = subprocess.Popen(
        [str(NAMEKO), "run", "--config", "config.yaml", "billing_service"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPOSITORY)]),
        },
    )
    try:
        handled = eventually(
            lambda: seen.exists() and len(seen.read_text().splitlines()) == 40,
            timeout=20,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)

    assert handled


FIFO_SERVICE = """
import time

from migrate.messaging.nameko_sqs import consume


class Ledger:
    name = "ledger"

    @consume({queue!r})
    def on_event(self, message):
        data = message.envelope.data
        tag = f"{{message.envelope.aggregate_id}} {{data['n']}}"
        with open({seen!r}, "a") as out:
            out.write(f"start {{tag}} {{time.monotonic()}}\\n")
        time.sleep(data["linger"])
        if data.get("refuse_first") and message.receive_count == 1:
            with open({seen!r}, "a") as out:
                out.write(f"fail {{tag}} {{time.monotonic()}}\\n")
            raise ValueError(f"refusing {{tag}} once")
        with open({seen!r}, "a") as out:
            out.write(f"end {{tag}} {{time.monotonic()}}\\n")
"""


def test_a_fifo_queue_is_consumed_one_message_group_at_a_time_in_order(
    emulator: Emulator, sns: Any, sqs: Any, wire: Any, tmp_path: Path
) -> None:
    feed = wire(fifo=True, visibility_timeout=2, dead_letter_after=3)
    (queue_url,) = feed.queue_urls.values()
    seen = tmp_path / "seen.txt"
    (tmp_path / "ledger_service.py").write_text(
        textwrap.dedent(FIFO_SERVICE).format(
            queue=queue_url.rsplit("/", 1)[-1], seen=str(seen)
        )
    )
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({"SQS_ENDPOINT_URL": emulator.endpoint_url, "max_workers": 6})
    )
    # Within each aggregate the early events are the slow ones, so workers
    # running side by side would finish them last; B's second fails once.
    lingers = {"A": [0.6, 0.3, 0.1, 0.0], "B": [0.05] * 4, "C": [0.3, 0.0, 0.2, 0.0]}
    events = [
        envelope(
            aggregate_id=aggregate,
            n=n + 1,
            linger=lingers[aggregate][n],
            refuse_first=(aggregate, n) == ("B", 1),
        )
        for n in range(4)
        for aggregate in ("A", "B", "C")
    ]
    publish(sns, feed, *events)
    process = subprocess.Popen(
        [str(NAMEKO), "run", "--config", "config.yaml", "ledger_service"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPOSITORY)]),
        },
    )
    try:
        eventually(
            lambda: seen.exists() and seen.read_text().count("end ") == 12,
            timeout=60,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)

    lines = [line.split() for line in seen.read_text().splitlines()]
    for aggregate in "ABC":
        ended = [
            int(n) for kind, agg, n, _ in lines if kind == "end" and agg == aggregate
        ]
        assert ended == [1, 2, 3, 4], (aggregate, lines)
        # Nothing of an aggregate starts while another of its events runs.
        mine = [(kind, n) for kind, agg, n, _ in lines if agg == aggregate]
        assert all(
            mine[i][0] == "start" and mine[i + 1][0] != "start"
            for i in range(0, len(mine), 2)
        ), mine
    fails = [(agg, n) for kind, agg, n, _ in lines if kind == "fail"]
    assert fails == [("B", "2")]
    assert _groups_overlapped(lines), lines
    eventually(lambda: depth(sqs, queue_url) == 0)


def _groups_overlapped(lines: list[list[str]]) -> bool:
    """Whether events of two aggregates ever ran at the same time."""
    running: set[str] = set()
    for kind, aggregate, _, _ in lines:
        if kind == "start":
            if running - {aggregate}:
                return True
            running.add(aggregate)
        else:
            running.discard(aggregate)
    return False
