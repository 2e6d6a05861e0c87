"""`migrate dlq` lists a context's dead letters and sends them back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from migrate.kernel.events import Envelope
from migrate.messaging.clients import sqs_client
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
