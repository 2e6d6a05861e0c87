"""Run a Lambda handler locally, fed by an SQS queue as AWS would feed it.

moto cannot invoke a function without Docker, so this runner plays the part
of Lambda's SQS event source mapping with ReportBatchItemFailures on:

- it receives up to `batch_size` messages (1-10) and builds the event Lambda
  builds: `{"Records": [...]}`, each record with `messageId`,
  `receiptHandle`, `body`, `attributes` (ApproximateReceiveCount,
  SentTimestamp, SenderId, ApproximateFirstReceiveTimestamp and whatever
  else SQS returned), `messageAttributes` in Lambda's camelCase shape,
  `md5OfBody`, `eventSource` = `aws:sqs`, `eventSourceARN` and `awsRegion`;
- it calls `handler(event, context)` with a context object that has Lambda's
  fields (`function_name`, `aws_request_id`, `invoked_function_arn`,
  `memory_limit_in_mb`, `log_group_name`, `log_stream_name`,
  `get_remaining_time_in_millis()` ...);
- it judges the response as Lambda does. None, `{}`, a missing or null
  `batchItemFailures`, or an empty list: every message succeeded and is
  deleted. A list of `{"itemIdentifier": messageId}`: those messages stay and
  return after the visibility timeout, the others are deleted. Anything
  else fails the whole batch: an identifier that is empty, null, not in the
  batch, or under another key; `batchItemFailures` that is not a list; a
  response that is not a JSON object. A raised exception fails the whole
  batch, and so does a handler that returns after `timeout` seconds.

What it does not do: kill a handler that overruns its timeout (it runs
in-process; the overrun only fails the batch, as on AWS), scale out to
concurrent invocations (one batch at a time), or wait for a batching window
to fill a batch.

Command line (SIGTERM or Ctrl-C stops it after the current batch):

    python -m migrate.messaging.lambda_runtime --handler package.module:function \\
        --function-name send-invoice --queue-url URL [--endpoint URL]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import importlib
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from migrate.messaging import queue_ops
from migrate.messaging.clients import sqs_client
from migrate.messaging.errors import (
    BatchFailed,
    HandlerNotFound,
    MessagingError,
    SettingInvalid,
)

_log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], "LambdaContext"], Any]

MAX_BACKOFF_SECONDS = 5.0


class LambdaContext:
    """The context object Lambda's Python runtime passes to a handler."""

    def __init__(
        self,
        function_name: str,
        region: str,
        account_id: str,
        timeout: float,
        memory_limit_in_mb: int = 128,
    ):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        )
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = (
            f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        )
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclasses.dataclass(frozen=True)
class Invocation:
    """What one poll did: the messages it passed to the handler, which it
    deleted, which it kept, and why the whole batch failed (None if not)."""

    request_id: str
    received: tuple[str, ...]
    deleted: tuple[str, ...]
    kept: tuple[str, ...]
    failure: str | None


class LambdaRuntime:
    def __init__(
        self,
        handler: Handler,
        function_name: str,
        queue_url: str,
        queue_arn: str,
        sqs: BaseClient,
        batch_size: int = 10,
        timeout: float = 30,
        *,
        wait_seconds: int = 1,
        memory_limit_in_mb: int = 128,
    ):
        if not 1 <= batch_size <= queue_ops.SQS_BATCH_LIMIT:
            raise SettingInvalid(
                "batch_size", batch_size, "this runner passes 1-10 messages a batch"
            )

        if not 0 < timeout <= 900:
            raise SettingInvalid("timeout", timeout, "Lambda runs 1-900 seconds")

        arn_parts = queue_arn.split(":")
        if len(arn_parts) != 6 or arn_parts[0] != "arn" or arn_parts[2] != "sqs":
            raise SettingInvalid(
                "queue_arn", queue_arn, "an SQS ARN is arn:aws:sqs:REGION:ACCOUNT:NAME"
            )

        self.handler = handler
        self.function_name = function_name
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region, self.account_id = arn_parts[3], arn_parts[4]
        self.batch_size = batch_size
        self.timeout = timeout
        self.wait_seconds = wait_seconds
        self.memory_limit_in_mb = memory_limit_in_mb
        self._sqs = sqs

    def poll_once(self) -> Invocation | None:
        """Receive one batch and invoke the handler; None if none came."""
        messages = queue_ops.receive(
            self._sqs,
            self.queue_url,
            max_messages=self.batch_size,
            wait_seconds=self.wait_seconds,
        )
        if not messages:
            return None

        event = self.event(messages)
        context = LambdaContext(
            self.function_name,
            self.region,
            self.account_id,
            self.timeout,
            self.memory_limit_in_mb,
        )
        ids = tuple(record["messageId"] for record in event["Records"])
        try:
            kept = self._invoke(event, context, ids)
        except BatchFailed as failed:
            _log.warning(
                "%s request %s failed its batch of %d: %s",
                self.function_name,
                context.aws_request_id,
                len(ids),
                failed,
            )
            return Invocation(context.aws_request_id, ids, (), ids, failed.reason)

        handles = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        done = [message_id for message_id in ids if message_id not in kept]
        refused = set(
            queue_ops.delete(self._sqs, self.queue_url, [handles[i] for i in done])
        )
        deleted = tuple(i for i in done if handles[i] not in refused)
        kept_ids = tuple(i for i in ids if i not in deleted)
        if kept:
            _log.info(
                "%s request %s reported %d of %d message(s) failed",
                self.function_name,
                context.aws_request_id,
                len(kept),
                len(ids),
            )
        return Invocation(context.aws_request_id, ids, deleted, kept_ids, None)

    def run(self, stop_event: threading.Event) -> None:
        """Poll and invoke until `stop_event` is set; survive an unreachable
        endpoint by logging and backing off."""
        failed_polls = 0
        while not stop_event.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError) as exc:
                failed_polls += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.2 * 2 ** min(failed_polls, 16))
                _log.warning(
                    "cannot poll %s for %s (attempt %d), retrying in %.1f s: %s",
                    self.queue_url,
                    self.function_name,
                    failed_polls,
                    delay,
                    exc,
                )
                stop_event.wait(delay)
                continue

            failed_polls = 0

    def event(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Lambda's SQS event for messages as ReceiveMessage returns them."""
        return {"Records": [self._record(message) for message in messages]}

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {
                name: _lambda_attribute(value)
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    def _invoke(
        self, event: dict[str, Any], context: LambdaContext, ids: tuple[str, ...]
    ) -> set[str]:
        """Call the handler; return the ids it reported as failed."""
        started = time.monotonic()
        try:
            response = self.handler(event, context)
        except Exception as exc:
            _log.exception("%s raised on a batch of %d", self.function_name, len(ids))
            raise BatchFailed(f"handler raised {type(exc).__name__}: {exc}") from exc

        elapsed = time.monotonic() - started
        if elapsed > self.timeout:
            raise BatchFailed(
                f"handler ran {elapsed:.1f} s; the timeout is {self.timeout:g} s"
            )

        return reported_failures(response, ids)


def reported_failures(response: Any, message_ids: Sequence[str]) -> set[str]:
    """The message ids a ReportBatchItemFailures response keeps, or
    `BatchFailed` when the response fails the whole batch."""
    if response is None:
        return set()

    try:
        response = json.loads(json.dumps(response))
    except (TypeError, ValueError) as exc:
        raise BatchFailed(f"response is not JSON ({exc})") from exc

    if not isinstance(response, dict):
        raise BatchFailed(f"response {response!r} is not a JSON object")

    failures = response.get("batchItemFailures")
    if failures is None:
        return set()

    if not isinstance(failures, list):
        raise BatchFailed(f"batchItemFailures {failures!r} is not a list")

    known = set(message_ids)
    kept: set[str] = set()
    for failure in failures:
        identifier = (
            failure.get("itemIdentifier") if isinstance(failure, dict) else None
        )
        if not isinstance(identifier, str) or identifier not in known:
            raise BatchFailed(
                f"batchItemFailures entry {failure!r}: each entry is "
                '{"itemIdentifier": <messageId of this batch>}'
            )

        kept.add(identifier)
    return kept


def _lambda_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [
        base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])
    ]
    attribute["dataType"] = value["DataType"]
    return attribute


def load_handler(spec: str) -> Handler:
    """`package.module:function` -> the function."""
    module_name, separator, function_name = spec.partition(":")
    if not separator or not module_name or not function_name:
        raise HandlerNotFound(spec, "no ':' between module and function")

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerNotFound(spec, f"cannot import {module_name}: {exc}") from exc

    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise HandlerNotFound(spec, f"{module_name} has no function {function_name}")

    return handler  # type: ignore[no-any-return]


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m migrate.messaging.lambda_runtime",
        description="Invoke a Lambda handler with batches from an SQS queue.",
    )
    parser.add_argument("--handler", required=True, help="package.module:function")
    parser.add_argument("--function-name", required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--endpoint", help="SQS endpoint URL (the emulator)")
    parser.add_argument("--region", help="AWS region (us-east-1 on the emulator)")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=30, help="seconds")
    parser.add_argument("--memory", type=int, default=128, help="MB, as reported")
    parser.add_argument("--log-level", default="INFO")
    return parser


EXIT_STOPPED = 0
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments().parse_args(argv)
    logging.basicConfig(
        level=arguments.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        handler = load_handler(arguments.handler)
        sqs = sqs_client(arguments.endpoint, arguments.region)
        queue_arn = sqs.get_queue_attributes(
            QueueUrl=arguments.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        runtime = LambdaRuntime(
            handler,
            arguments.function_name,
            arguments.queue_url,
            queue_arn,
            sqs,
            batch_size=arguments.batch_size,
            timeout=arguments.timeout,
            memory_limit_in_mb=arguments.memory,
        )
    except (MessagingError, BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        _log.info("stopping %s on signal %d", arguments.function_name, signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _log.info("invoking %s with batches from %s", arguments.handler, queue_arn)
    runtime.run(stop)
    return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(main())
