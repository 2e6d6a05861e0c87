"""The emulator's own entry point: moto's server, logging JSON lines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from migrate.messaging.clients import sqs_client
from migrate.messaging.emulator import free_port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    port = free_port()
    log = tmp_path / "emulator.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "migrate.messaging.emulator_server",
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=output, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/", timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    try:
        yield process, url, log
    finally:
        process.kill()
        process.wait(10)


def _lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_it_serves_sqs_and_logs_only_json_lines(
    served: tuple[subprocess.Popen, str, Path],
) -> None:
    process, url, log = served
    sqs = sqs_client(url)

    queue = sqs.create_queue(QueueName="orders")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="hello")
    received = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
    with pytest.raises(botocore.exceptions.ClientError):
        sqs.get_queue_url(QueueName="nosuch")
    time.sleep(0.3)

    lines = _lines(log)
    assert [m["Body"] for m in received["Messages"]] == ["hello"]
    assert lines[0]["message"] == f"emulator listening on {url}"
    assert {line["service"] for line in lines} == {"emulator"}
    (failed,) = [line for line in lines if line["level"] != "INFO"]
    assert failed["level"] == "WARNING"
    assert (failed["status"], failed["action"]) == (400, "AmazonSQS.GetQueueUrl")


def test_it_stops_on_sigterm_and_says_so(
    served: tuple[subprocess.Popen, str, Path],
) -> None:
    process, _, log = served

    process.send_signal(signal.SIGTERM)
    code = process.wait(15)

    assert code == 0
    assert _lines(log)[-1]["message"] == "emulator stopped"


def test_a_receive_checks_retention_without_counting_the_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.sqs.models import Queue, SQSBackend

    from migrate.messaging.emulator_server import _receive_in_linear_time

    monkeypatch.setattr(SQSBackend, "is_message_valid_based_on_retention_period",
                        SQSBackend.is_message_valid_based_on_retention_period)
    _receive_in_linear_time()
    backend = SQSBackend("us-east-1", "123456789012")
    backend.create_queue("deep", MessageRetentionPeriod="60")
    for n in range(50):
        backend.send_message("deep", f"message {n}")
    counted: list[str] = []
    attributes: Any = Queue.attributes

    def counting(queue: Queue) -> Any:
        counted.append(queue.name)
        return attributes.fget(queue)

    monkeypatch.setattr(Queue, "attributes", property(counting))

    received = backend.receive_message("deep", 10, 0, 30)
    stale: Any = received[0]
    stale.sent_timestamp = int(received[1].sent_timestamp or 0) - 61_000

    assert len(received) == 10
    # Counting the queue's messages for every message received made a
    # receive cost the square of the queue's depth.
    assert counted == []
    assert not backend.is_message_valid_based_on_retention_period("deep", stale)
    assert backend.is_message_valid_based_on_retention_period("deep", received[1])
