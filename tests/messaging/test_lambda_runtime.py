from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.parser.models import SqsModel

from migrate.kernel.events import Envelope
from migrate.messaging.emulator import Emulator
from migrate.messaging.errors import SettingInvalid
from migrate.messaging.lambda_runtime import LambdaRuntime
from migrate.messaging.message import ReceivedMessage
from migrate.messaging.publisher import SnsPublisher

from .helpers import depth, envelope, eventually

REPOSITORY = Path(__file__).resolve().parents[2]


class Feed:
    """A topic feeding a queue with a 1 s visibility timeout."""

    def __init__(self, sns: Any, sqs: Any, wire):
        resources = wire(visibility_timeout=1)
        (self.topic_arn,) = resources.topic_arns.values()
        (self.queue_url,) = resources.queue_urls.values()
        (self.queue_arn,) = resources.queue_arns.values()
        self.sns, self.sqs = sns, sqs

    def publish(self, *events: Envelope) -> None:
        SnsPublisher(self.sns).publish_batch(self.topic_arn, list(events))

    def runtime(self, handler: Callable[..., Any], **options: Any) -> LambdaRuntime:
        return LambdaRuntime(
            handler,
            "send-invoice",
            self.queue_url,
            self.queue_arn,
            self.sqs,
            **options,
        )

    def depth(self) -> int:
        return depth(self.sqs, self.queue_url)


@pytest.fixture
def feed(sns: Any, sqs: Any, wire) -> Feed:
    return Feed(sns, sqs, wire)


class Capture:
    def __init__(self, response: Any = None):
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.response = response

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        if callable(self.response):
            return self.response(event)

        return self.response


def test_event_is_the_sqs_event_that_powertools_parses(feed: Feed) -> None:
    sent = envelope()
    feed.publish(sent)
    handler = Capture()

    feed.runtime(handler).poll_once()

    (event,) = handler.events
    parsed = SqsModel.model_validate(event)
    (record,) = event["Records"]
    assert parsed.Records[0].attributes.ApproximateReceiveCount == "1"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == feed.queue_arn
    assert record["awsRegion"] == "us-east-1"
    assert record["messageAttributes"]["event_type"] == {
        "stringValue": "InvoiceIssued",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert ReceivedMessage.from_lambda_record(record).envelope == sent


def test_context_names_the_function_and_counts_down(feed: Feed) -> None:
    feed.publish(envelope())
    handler = Capture()

    invocation = feed.runtime(handler, timeout=5).poll_once()

    (context,) = handler.contexts
    assert invocation is not None
    assert context.aws_request_id == invocation.request_id
    assert context.function_name == "send-invoice"
    assert context.invoked_function_arn.endswith(":function:send-invoice")
    assert context.log_group_name == "/aws/lambda/send-invoice"
    assert 0 < context.get_remaining_time_in_millis() <= 5000


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["none", "empty-object", "empty-list", "null-list"],
)
def test_response_without_failures_deletes_the_whole_batch(
    feed: Feed, response: Any
) -> None:
    feed.publish(envelope(), envelope())

    invocation = feed.runtime(Capture(response)).poll_once()

    assert invocation is not None
    assert invocation.failure is None
    assert len(invocation.deleted) == 2
    assert feed.depth() == 0


def test_reported_failure_stays_and_returns_after_the_visibility_timeout(
    feed: Feed,
) -> None:
    feed.publish(envelope("InvoiceIssued"), envelope("InvoicePaid"))

    def fail_paid(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]}
                for r in event["Records"]
                if r["messageAttributes"]["event_type"]["stringValue"] == "InvoicePaid"
            ]
        }

    runtime = feed.runtime(Capture(fail_paid))
    first = runtime.poll_once()
    assert first is not None

    again = eventually(runtime.poll_once, timeout=10)

    assert len(first.deleted) == 1
    assert again.received == first.kept
    assert feed.depth() == 1


def echo_first(make: Callable[[str], Any]) -> Callable[[dict[str, Any]], Any]:
    return lambda event: make(event["Records"][0]["messageId"])


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
        echo_first(lambda i: {"batchItemFailures": [{"messageId": i}]}),
        echo_first(lambda i: {"batchItemFailures": [i]}),
        echo_first(lambda i: {"batchItemFailures": {"itemIdentifier": i}}),
        "ok",
    ],
    ids=[
        "empty-id",
        "null-id",
        "unknown-id",
        "wrong-key",
        "bare-id",
        "object-not-list",
        "not-an-object",
    ],
)
def test_malformed_failure_report_fails_the_whole_batch(
    feed: Feed, response: Any
) -> None:
    feed.publish(envelope(), envelope())

    invocation = feed.runtime(Capture(response)).poll_once()

    assert invocation is not None
    assert invocation.failure is not None
    assert invocation.deleted == ()
    assert feed.depth() == 2


def test_raised_exception_fails_the_whole_batch(feed: Feed) -> None:
    feed.publish(envelope(), envelope())

    def explode(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("smtp server down")

    invocation = feed.runtime(explode).poll_once()

    assert invocation is not None
    assert "smtp server down" in (invocation.failure or "")
    assert invocation.deleted == ()
    assert feed.depth() == 2


def test_handler_overrunning_its_timeout_fails_the_whole_batch(feed: Feed) -> None:
    feed.publish(envelope())

    def linger(event: dict[str, Any], context: Any) -> None:
        time.sleep(1.2)

    invocation = feed.runtime(linger, timeout=1).poll_once()

    assert invocation is not None
    assert "timeout" in (invocation.failure or "")
    assert feed.depth() == 1


def test_powertools_batch_processor_keeps_only_the_record_it_failed(
    feed: Feed,
) -> None:
    issued, paid = envelope("InvoiceIssued"), envelope("InvoicePaid")
    feed.publish(issued, paid)
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: Any) -> None:
        if Envelope.from_json(record.body).event_type == "InvoicePaid":
            raise ValueError("cannot send a receipt yet")

    def handler(event: dict[str, Any], context: Any) -> Any:
        return process_partial_response(
            event=event,
            record_handler=record_handler,
            processor=processor,
            context=context,
        )

    invocation = feed.runtime(handler).poll_once()

    assert invocation is not None
    assert invocation.failure is None
    assert len(invocation.deleted) == 1
    assert len(invocation.kept) == 1
    assert feed.depth() == 1


def test_batch_size_over_ten_is_refused(feed: Feed) -> None:
    with pytest.raises(SettingInvalid, match="batch_size 11"):
        feed.runtime(Capture(), batch_size=11)


def test_runtime_command_invokes_the_handler_and_stops_on_sigterm(
    emulator: Emulator, feed: Feed, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.txt"
    (tmp_path / "receipts.py").write_text(
        textwrap.dedent(
            f"""
            import json

            def handle(event, context):
                with open({str(seen)!r}, "a") as out:
                    for record in event["Records"]:
                        out.write(json.loads(record["body"])["event_id"] + "\\n")
            """
        )
    )
    sent = envelope()
    feed.publish(sent)
    command = [
        sys.executable, "-m", "migrate.messaging.lambda_runtime",
        "--handler", "receipts:handle",
        "--function-name", "send-receipt",
        "--queue-url", feed.queue_url,
        "--endpoint", emulator.endpoint_url,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPOSITORY)]),
        },
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(lambda: seen.exists() and seen.read_text().split())

        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    finally:
        process.kill()
        log = process.stderr.read() if process.stderr else ""

    assert code == 0, log
    assert seen.read_text().split() == [sent.event_id]
    assert feed.depth() == 0
