"""`migrate dlq` lists a context's dead letters and sends them back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from migrate.kernel.events import Envelope
from migrate.messaging.clients import sqs_client
from migrate.settings import Settings
from migrate.system import System
from monolith.billing.events import InvoiceIssued

pytestmark = pytest.mark.e2e


def migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "migrate.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def eventually(probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()) and time.monotonic() < deadline:
        time.sleep(1)
    return found


def test_a_dead_letter_is_listed_with_its_event_and_redriven_to_its_queue(
    system: System, workspace: dict[str, str]
) -> None:
    migrate(workspace, "seed", "--orders", "3")
    migrate(workspace, "up")
    resources = system.resources()
    sqs = sqs_client(system.settings.endpoint_url)
    queue = "northwind-billing-invoice-email"
    poison = Envelope.wrap(InvoiceIssued({"invoice_id": 999}), "monolith")
    sqs.send_message(
        QueueUrl=resources.dead_letter_url(queue), MessageBody=poison.to_json()
    )

    listed = json.loads(migrate(workspace, "dlq", "billing", "--json").stdout)
    redriven = json.loads(
        migrate(workspace, "dlq", "redrive", "billing", "--json").stdout
    )

    assert [(d["queue"], d["event_id"], d["event_type"]) for d in listed] == [
        (queue, poison.event_id, "InvoiceIssued")
    ]
    assert redriven["redriven"][queue] == 1
    assert json.loads(migrate(workspace, "dlq", "billing", "--json").stdout) == []


def test_a_message_the_billing_service_keeps_failing_is_listed_with_its_error(
    workspace: dict[str, str],
) -> None:
    env = {**workspace, "MIGRATE_VISIBILITY_SECONDS": "1"}
    system = System(Settings.from_env(env))
    try:
        migrate(env, "seed", "--orders", "3")
        migrate(env, "up")
        extracted = migrate(env, "extract", "billing")
        assert extracted.returncode == 0, extracted.stderr
        resources = system.resources()
        queue = "northwind-billing-service-sync"
        # An invoice event whose state lacks what billing's replica reads.
        poison = Envelope.wrap(InvoiceIssued({"invoice_id": 999}), "monolith")
        sqs_client(system.settings.endpoint_url).send_message(
            QueueUrl=resources.queue_url(queue),
            MessageBody=poison.to_json(),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in poison.attributes().items()
            },
        )

        letters = eventually(
            lambda: json.loads(migrate(env, "dlq", "billing", "--json").stdout),
            timeout=60,
        )
        shown = migrate(env, "dlq", "billing")
    finally:
        system.down()

    (letter,) = letters
    assert (letter["queue"], letter["event_id"]) == (queue, poison.event_id)
    assert letter["reason"] == "KeyError: 'customer_id'"
    assert letter["receive_count"] == 5
    # People read it in a table, which may wrap the reason.
    assert "KeyError" in shown.stdout and "'customer_id'" in shown.stdout
