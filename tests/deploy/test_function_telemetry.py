"""The side-effect functions' powertools logger and tracer, under the local
runtime as `migrate up` runs it: a process of its own, tracing on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate.messaging.emulator import Emulator
from migrate.messaging.publisher import SnsPublisher
from migrate.observe.collector import parse_datagram

from .helpers import eventually, issued

FUNCTION = "northwind-billing-invoice-email"


class Daemon:
    """Where the X-Ray daemon would listen: every segment document sent."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.address = f"127.0.0.1:{self.socket.getsockname()[1]}"
        self.documents: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                continue
            self.documents.append(parse_datagram(data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    listening = Daemon()
    yield listening
    listening.close()


def _run_function(
    tmp_path: Path, emulator: Emulator, queue_url: str, tracing: str, daemon: Daemon,
    until: Any,
) -> str:
    """Run the e-mail function under the runtime until `until()`; its stdout."""
    env = {**os.environ, "MIGRATE_TRACING": tracing, "MIGRATE_TRACE_RATE": "1",
           "AWS_XRAY_DAEMON_ADDRESS": daemon.address}
    runtime = subprocess.Popen(
        [sys.executable, "-m", "migrate.messaging.lambda_runtime",
         "--handler", "monolith.billing.functions:invoice_email",
         "--function-name", FUNCTION, "--queue-url", queue_url,
         "--endpoint", emulator.endpoint_url,
         "--env", f"MAIL_DIR={tmp_path / 'mail'}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        eventually(until, timeout=30)
    finally:
        runtime.send_signal(signal.SIGTERM)
        output, _ = runtime.communicate(timeout=30)
    return output


def _log_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()
            if line.startswith("{")]


def test_each_record_is_logged_as_json_with_the_service_and_the_event_id(
    tmp_path: Path, wire: Any, sns: Any, emulator: Emulator, daemon: Daemon,
) -> None:
    resources = wire()
    (topic,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    envelope = issued(50001)
    SnsPublisher(sns).publish(topic, envelope)
    mail = tmp_path / "mail" / "invoice-50001.eml"

    output = _run_function(tmp_path, emulator, queue_url, "off", daemon, mail.exists)

    [line] = [entry for entry in _log_lines(output)
              if entry.get("message") == "invoice e-mail"]
    assert line["service"] == "billing"
    assert line["event_id"] == envelope.event_id
    assert line["invoice_id"] == "50001"
    assert line["sent"] is True
    assert line["function_name"] == FUNCTION
    assert line["level"] == "INFO"


def test_with_tracing_on_the_handler_traces_into_the_invocation_segment(
    tmp_path: Path, wire: Any, sns: Any, emulator: Emulator, daemon: Daemon,
) -> None:
    resources = wire()
    (topic,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    SnsPublisher(sns).publish(topic, issued(50002))

    def handler_traced() -> list[dict[str, Any]]:
        return [d for d in daemon.documents if d["name"] == "## invoice_email"]

    _run_function(tmp_path, emulator, queue_url, "on", daemon, handler_traced)

    [invocation] = [d for d in daemon.documents if d["name"] == FUNCTION]
    [handler] = handler_traced()
    assert invocation["origin"] == "AWS::Lambda::Function"
    assert handler["trace_id"] == invocation["trace_id"]
    assert handler["parent_id"] == invocation["id"]
    assert handler["annotations"]["Service"] == "billing"
    assert "ColdStart" in handler["annotations"]


def test_with_tracing_off_the_handler_sends_no_trace(
    tmp_path: Path, wire: Any, sns: Any, emulator: Emulator, daemon: Daemon,
) -> None:
    resources = wire()
    (topic,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    SnsPublisher(sns).publish(topic, issued(50003))
    mail = tmp_path / "mail" / "invoice-50003.eml"

    _run_function(tmp_path, emulator, queue_url, "off", daemon, mail.exists)

    assert daemon.documents == []
