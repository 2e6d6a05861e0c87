"""The side-effect functions under the local runtime, against the emulator.

A batch that times out half way through is delivered again; the side
effects already done must not be done twice. The handler below wraps
billing's real `invoice_email` function: it sends the first record, then
hangs past the timeout on the first delivery only. Every attempt to deliver
a file is logged, so a second attempt shows even where the outlet itself
would refuse to write twice.
"""

from __future__ import annotations

import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from migrate.messaging.emulator import Emulator
from migrate.messaging.lambda_runtime import LambdaRuntime, function_environment
from migrate.messaging.publisher import SnsPublisher

from .helpers import depth, eventually, issued

HALFWAY = """
import os
import time

from monolith.billing import functions, outlets

_store = outlets.FolderOutlet.store


def _logged(self, name, content):
    with open(os.environ["ATTEMPTS"], "a") as log:
        log.write(name + "\\n")
    return _store(self, name, content)


outlets.FolderOutlet.store = _logged


def handle(event, context):
    records = event["Records"]
    first = functions.{function}({{"Records": records[:1]}}, context)
    if all(r["attributes"]["ApproximateReceiveCount"] == "1" for r in records):
        time.sleep(60)
    rest = functions.{function}({{"Records": records[1:]}}, context)
    return {{
        "batchItemFailures": first["batchItemFailures"] + rest["batchItemFailures"]
    }}
"""


class Redelivery:
    """Three issued invoices, a batch that times out after the first, and
    the polls that follow until the queue is empty."""

    def __init__(self, tmp_path: Path, wire: Any, sns: Any, sqs: Any,
                 function: str = "invoice_email"):
        module = f"halfway_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{module}.py").write_text(
            textwrap.dedent(HALFWAY.format(function=function)))
        self.function = function
        self.spec = f"{module}:handle"
        self.mail = tmp_path / "mail"
        self.attempts = tmp_path / "attempts.log"
        resources = wire(visibility_timeout=2)
        (topic,) = resources.topic_arns.values()
        (self.queue_url,) = resources.queue_urls.values()
        (self.queue_arn,) = resources.queue_arns.values()
        self.sns, self.sqs = sns, sqs
        self.topic = topic
        self.invoices = [20001, 20002, 20003]

    def run(self, endpoint: str, **variables: str) -> tuple[Any, list[Any]]:
        SnsPublisher(self.sns).publish_batch(
            self.topic, [issued(i) for i in self.invoices]
        )
        environment = function_environment(
            [f"{k}={v}" for k, v in variables.items()], endpoint
        )
        environment.update(MAIL_DIR=str(self.mail), ATTEMPTS=str(self.attempts))
        runtime = LambdaRuntime(
            self.spec,
            f"northwind-billing-{self.function.replace('_', '-')}",
            self.queue_url,
            self.queue_arn,
            self.sqs,
            timeout=3,
            environment=environment,
        )
        with runtime:
            first = runtime.poll_once()
            later = []
            deadline = time.monotonic() + 30
            while depth(self.sqs, self.queue_url) and time.monotonic() < deadline:
                polled = runtime.poll_once()
                if polled is not None:
                    later.append(polled)
        return first, later

    def attempted(self) -> Counter[str]:
        return Counter(self.attempts.read_text().split())

    def mailed(self) -> list[str]:
        return sorted(p.name for p in self.mail.glob("*.eml"))

    def rendered(self) -> list[str]:
        return sorted(p.name for p in (self.mail / "documents").glob("*.pdf"))


@pytest.fixture
def redelivery(
    tmp_path: Path, wire: Any, sns: Any, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> Redelivery:
    monkeypatch.syspath_prepend(str(tmp_path))
    return Redelivery(tmp_path, wire, sns, sqs)


@pytest.fixture
def idempotency_table(dynamodb: Any) -> str:
    table = f"idempotency-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table


def test_redelivered_batch_sends_no_second_email(
    redelivery: Redelivery, emulator: Emulator, idempotency_table: str
) -> None:
    first, later = redelivery.run(
        emulator.endpoint_url, IDEMPOTENCY_TABLE=idempotency_table
    )

    assert first is not None and "timeout" in (first.failure or "")
    assert later and all(polled.failure is None for polled in later)
    assert redelivery.mailed() == [f"invoice-{i}.eml" for i in redelivery.invoices]
    assert set(redelivery.attempted().values()) == {1}


def test_without_the_table_only_the_outlet_stops_the_second_email(
    redelivery: Redelivery, emulator: Emulator
) -> None:
    redelivery.run(emulator.endpoint_url)

    assert redelivery.mailed() == [f"invoice-{i}.eml" for i in redelivery.invoices]
    assert max(redelivery.attempted().values()) == 2


def test_redelivered_batch_renders_no_second_pdf(
    tmp_path: Path, wire: Any, sns: Any, sqs: Any, monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator, idempotency_table: str,
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    pdfs = Redelivery(tmp_path, wire, sns, sqs, function="invoice_pdf")

    first, later = pdfs.run(emulator.endpoint_url, IDEMPOTENCY_TABLE=idempotency_table)

    assert first is not None and "timeout" in (first.failure or "")
    assert later and all(polled.failure is None for polled in later)
    assert pdfs.rendered() == [f"invoice-{i}.pdf" for i in pdfs.invoices]
    assert pdfs.attempted() == Counter(f"invoice-{i}.pdf" for i in pdfs.invoices)


def test_invoice_pdf_function_renders_each_invoice_once(
    tmp_path: Path, wire: Any, sns: Any, sqs: Any, emulator: Emulator
) -> None:
    resources = wire()
    (topic,) = resources.topic_arns.values()
    (queue_url,) = resources.queue_urls.values()
    (queue_arn,) = resources.queue_arns.values()
    SnsPublisher(sns).publish_batch(topic, [issued(30001), issued(30001)])
    environment = function_environment([], emulator.endpoint_url)
    environment["MAIL_DIR"] = str(tmp_path)
    runtime = LambdaRuntime(
        "monolith.billing.functions:invoice_pdf",
        "northwind-billing-invoice-pdf",
        queue_url,
        queue_arn,
        sqs,
        environment=environment,
    )

    with runtime:
        eventually(lambda: runtime.poll_once() and not depth(sqs, queue_url))

    (document,) = (tmp_path / "documents").iterdir()
    assert document.name == "invoice-30001.pdf"
    assert document.read_bytes().startswith(b"%PDF-1.4")
