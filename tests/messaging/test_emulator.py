from __future__ import annotations

import urllib.request

import pytest

from migrate.messaging.clients import sqs_client
from migrate.messaging.emulator import Emulator, free_port
from migrate.messaging.errors import EmulatorFailed


def test_emulator_answers_on_loopback_once_started(emulator: Emulator) -> None:
    with urllib.request.urlopen(emulator.endpoint_url, timeout=5) as answer:
        status = answer.status

    assert emulator.endpoint_url.startswith("http://127.0.0.1:")
    assert status == 200


def test_restarted_emulator_forgets_its_queues() -> None:
    with Emulator() as emulator:
        sqs = sqs_client(emulator.endpoint_url)
        sqs.create_queue(QueueName="forgotten")
        port = emulator.port

        emulator.restart()

        names = sqs_client(emulator.endpoint_url).list_queues().get("QueueUrls", [])
        assert emulator.port == port
        assert names == []


def test_stopped_emulator_no_longer_runs() -> None:
    emulator = Emulator().start()

    emulator.stop()

    assert not emulator.running


def test_emulator_on_a_taken_port_fails_with_the_port_in_the_error() -> None:
    port = free_port()
    with Emulator(port=port):
        taken = Emulator(port=port, startup_timeout=10)

        with pytest.raises(EmulatorFailed, match=str(port)):
            taken.start()
