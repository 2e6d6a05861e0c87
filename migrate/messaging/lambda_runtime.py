"""Run a Lambda handler locally, fed by an SQS queue as AWS would feed it.

moto cannot invoke a function without Docker, so this runner plays the part
of Lambda's SQS event source mapping with ReportBatchItemFailures on.

Batches. A poller receives up to `batch_size` messages (1-10). With a
batching window (0-300 s) it goes on receiving until the batch is full or
the window, counted from the first message, has closed; without one it
invokes with what the first receive brought.

The event is the one Lambda builds: `{"Records": [...]}`, each record with
`messageId`, `receiptHandle`, `body`, `attributes` (ApproximateReceiveCount,
SentTimestamp, SenderId, ApproximateFirstReceiveTimestamp and whatever else
SQS returned), `messageAttributes` in Lambda's camelCase shape, `md5OfBody`,
`eventSource` = `aws:sqs`, `eventSourceARN` and `awsRegion`. The context
object has Lambda's fields (`function_name`, `aws_request_id`,
`invoked_function_arn`, `memory_limit_in_mb`, `log_group_name`,
`log_stream_name`, `get_remaining_time_in_millis()` ...).

The response is judged as Lambda judges it. None, `{}`, a missing or null
`batchItemFailures`, or an empty list: every message succeeded and is
deleted. A list of `{"itemIdentifier": messageId}`: those messages stay and
return after the visibility timeout, the others are deleted. Anything else
fails the whole batch: an identifier that is empty, null, not in the batch,
or under another key; `batchItemFailures` that is not a list; a response
that is not a JSON object. A raised exception fails the whole batch, and so
does a timeout.

Execution environments. A handler named as `package.module:function` runs
as on Lambda, in an execution environment of its own: a child process that
imports the handler once (the cold start, allowed 10 s) and then takes one
invocation at a time. It sees Lambda's environment variables
(`AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`,
`AWS_REGION` ...) plus the ones given to the runner. An invocation still
running at its timeout is stopped where it is: the environment is killed,
the whole batch fails, and the next invocation starts a fresh environment.
Whatever the handler did before the kill stays done, which is why every side
effect must be idempotent.

A handler given as a Python callable runs in this process instead: cheaper,
and enough for the judging rules, but an overrun cannot be stopped (it fails
the batch only once the handler returns) and concurrent pollers share the
handler's module state.

Concurrency. `run` starts `concurrency` pollers (the event source mapping's
maximum concurrency), each with its own environment, so at most that many
batches are being handled at once.

Dead letters. Failed messages are left as they are; SQS makes them visible
again after the queue's visibility timeout and moves them to the dead-letter
queue once they were received more often than the redrive policy's
maxReceiveCount. The runner only has to leave them alone.

Metrics. Each invocation is counted per function (invocations, whole-batch
errors, items reported failed, duration, batch size, cold starts) in the
process's metrics, served for Prometheus on a free loopback port when
`MIGRATE_METRICS_DIR` says where to record it; with `MIGRATE_METRICS_EMF=on`
they are also printed as CloudWatch embedded metric format lines, as
CloudWatch would see them from the function.

What it does not do: enforce the memory size (it is reported), cap a batch
at Lambda's 6 MB payload, scale the number of pollers with the queue's
depth, or give an environment a /tmp of its own.

Command line (SIGTERM or Ctrl-C stops it after the current batches):

    python -m migrate.messaging.lambda_runtime --handler package.module:function \\
        --function-name send-invoice --queue-url URL [--endpoint URL] \\
        [--batch-size N] [--batching-window S] [--timeout S] [--concurrency N] \\
        [--env NAME=VALUE ...] [--in-process]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import importlib
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol, Self

from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from migrate.errors import ConfigurationError
from migrate.messaging import queue_ops
from migrate.messaging.clients import EMULATOR_REGION, sqs_client
from migrate.messaging.errors import (
    BatchFailed,
    HandlerNotFound,
    MessagingError,
    SettingInvalid,
)
from migrate.observe import logs, metrics, setup_process, tracing

_log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], "LambdaContext"], Any]

MAX_BACKOFF_SECONDS = 5.0
MAX_TIMEOUT_SECONDS = 900
MAX_BATCHING_WINDOW_SECONDS = 300
MAX_CONCURRENCY = 1000
# Lambda allows a function's initialisation 10 s before it fails the invoke.
INIT_TIMEOUT_SECONDS = 10.0
_LONG_POLL_LIMIT = 20
_MEASURES = (
    "migrate_lambda_invocations_total", "migrate_lambda_errors_total",
    "migrate_lambda_items_failed_total", "migrate_lambda_cold_starts_total",
    "migrate_lambda_duration_seconds", "migrate_lambda_batch_size_messages",
)
_EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "emulator",
    "AWS_SECRET_ACCESS_KEY": "emulator",
}


class LambdaContext:
    """The context object Lambda's Python runtime passes to a handler."""

    def __init__(
        self,
        function_name: str,
        region: str,
        account_id: str,
        timeout: float,
        memory_limit_in_mb: int = 128,
        aws_request_id: str | None = None,
    ):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        )
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = (
            f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        )
        self.identity = None
        self.client_context = None
        # What Lambda sets as `_X_AMZN_TRACE_ID` for the invocation.
        self.trace_header = ""
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


class Environment(Protocol):
    """Where a handler runs: `invoke` returns its response as JSON data or
    raises `BatchFailed`."""

    def invoke(
        self, event: dict[str, Any], context: LambdaContext, timeout: float
    ) -> Any: ...

    def close(self) -> None: ...


class InProcess:
    """Calls a handler in this process; an overrun is noticed on return."""

    def __init__(self, handler: Handler, function_name: str):
        self.handler = handler
        self.function_name = function_name

    def invoke(
        self, event: dict[str, Any], context: LambdaContext, timeout: float
    ) -> Any:
        started = time.monotonic()
        if context.trace_header:
            os.environ["_X_AMZN_TRACE_ID"] = context.trace_header
        try:
            response = self.handler(event, context)
        except Exception as exc:
            _log.exception(
                "%s raised on a batch of %d", self.function_name, len(event["Records"])
            )
            raise BatchFailed(f"handler raised {type(exc).__name__}: {exc}") from exc

        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise BatchFailed(
                f"handler ran {elapsed:.1f} s; the timeout is {timeout:g} s"
            )

        return response

    def close(self) -> None:
        return None


class Sandbox:
    """One execution environment: a child process that imported the handler
    once and takes one invocation at a time; killed at a timeout."""

    def __init__(
        self,
        spec: str,
        function_name: str,
        variables: Mapping[str, str],
        memory_limit_in_mb: int = 128,
    ):
        self.spec = spec
        self.function_name = function_name
        self.variables = dict(variables)
        self.memory_limit_in_mb = memory_limit_in_mb
        self.cold_starts = 0
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    def invoke(
        self, event: dict[str, Any], context: LambdaContext, timeout: float
    ) -> Any:
        connection = self._ready()
        connection.send(
            (
                "invoke",
                event,
                context.aws_request_id,
                timeout,
                context.log_stream_name,
                context.trace_header,
            )
        )
        if not connection.poll(timeout):
            self._stop()
            raise BatchFailed(
                f"handler was still running at its timeout of {timeout:g} s; "
                "its execution environment was stopped"
            )

        try:
            outcome, detail = connection.recv()
        except (EOFError, OSError):
            code = self._stop()
            raise BatchFailed(
                f"the execution environment exited (code {code}) during the call"
            ) from None

        if outcome == "raised":
            raise BatchFailed(f"handler raised {detail}")

        if outcome == "not-json":
            raise BatchFailed(f"response is not JSON ({detail})")

        return json.loads(detail)

    def close(self) -> None:
        if self._connection is not None and self._alive():
            try:
                self._connection.send(("stop",))
            except OSError:
                pass
            if self._process is not None:
                self._process.join(2)
        self._stop()

    def _alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> None:
        """Start the environment unless it runs (a cold start)."""
        self._ready()

    def _ready(self) -> Connection:
        if self._connection is not None and self._alive():
            return self._connection

        self._stop()
        spawn = multiprocessing.get_context("spawn")
        ours, theirs = spawn.Pipe()
        process = spawn.Process(
            target=_serve_invocations,
            args=(theirs, self.spec, self.function_name, self.variables),
            name=f"lambda:{self.function_name}",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._process, self._connection = process, ours
        if not ours.poll(INIT_TIMEOUT_SECONDS):
            self._stop()
            raise BatchFailed(
                f"{self.spec} took longer than {INIT_TIMEOUT_SECONDS:g} s to start"
            )

        try:
            state, detail = ours.recv()
        except (EOFError, OSError):
            code = self._stop()
            raise BatchFailed(
                f"the execution environment of {self.spec} exited (code {code}) "
                "while starting"
            ) from None

        if state != "ready":
            self._stop()
            raise BatchFailed(f"{self.spec} failed to start: {detail}")

        self.cold_starts += 1
        metrics.process("migrate_lambda_cold_starts_total").labels(
            self.function_name
        ).inc()
        _log.info("%s: cold start %d", self.function_name, self.cold_starts)
        return ours

    def _stop(self) -> int | None:
        """Kill the environment if it runs; its exit code, if it had one."""
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            connection.close()
        if process is None:
            return None

        if process.is_alive():
            process.kill()
        process.join(5)
        return process.exitcode


def _serve_invocations(
    connection: Connection,
    spec: str,
    function_name: str,
    variables: Mapping[str, str],
) -> None:
    """The execution environment's main loop, in its own process."""
    # The runner decides when an environment stops; a terminal's Ctrl-C or a
    # supervisor's SIGTERM reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.update(variables)
    logs.configure(function_name)
    region = os.environ.get("AWS_REGION", EMULATOR_REGION)
    account_id = os.environ.get("MIGRATE_LAMBDA_ACCOUNT", "000000000000")
    memory = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    try:
        handler = load_handler(spec)
    except Exception as exc:
        connection.send(("init-failed", f"{type(exc).__name__}: {exc}"))
        return

    connection.send(("ready", None))
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return

        if request[0] != "invoke":
            return

        _, event, request_id, timeout, log_stream, trace_header = request
        context = LambdaContext(
            function_name, region, account_id, timeout, memory, request_id
        )
        context.log_stream_name = log_stream
        context.trace_header = trace_header
        # Lambda's runtime sets it per invocation; X-Ray's SDK reads it.
        os.environ["_X_AMZN_TRACE_ID"] = trace_header
        try:
            response = handler(event, context)
        except Exception as exc:
            traceback.print_exc()
            connection.send(("raised", f"{type(exc).__name__}: {exc}"))
            continue

        try:
            text = json.dumps(response)
        except (TypeError, ValueError) as exc:
            connection.send(("not-json", str(exc)))
            continue

        connection.send(("returned", text))


def lambda_variables(
    function_name: str, region: str, memory_limit_in_mb: int, spec: str
) -> dict[str, str]:
    """The environment variables Lambda sets for a function. `LAMBDA_TASK_ROOT`
    only when tracing is on: it turns on powertools' tracer and X-Ray's
    Lambda mode, which send the handler's subsegments to the daemon's
    address, where the kit's collector then listens."""
    module, _, function = spec.partition(":")
    traced = (
        {"LAMBDA_TASK_ROOT": str(Path.cwd())} if tracing.enabled() else {}
    )
    return {
        **traced,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_limit_in_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "_HANDLER": f"{module}.{function}",
    }


class LambdaRuntime:
    """An SQS event source mapping for one function, polling one queue.

    `handler` is a callable (run in this process) or a `package.module:
    function` spec (run in execution environments of its own). Times are in
    seconds. Use it as a context manager, or call `close()`, to stop the
    environments it started.
    """

    def __init__(
        self,
        handler: Handler | str,
        function_name: str,
        queue_url: str,
        queue_arn: str,
        sqs: BaseClient,
        batch_size: int = 10,
        timeout: float = 30,
        *,
        wait_seconds: int = 1,
        memory_limit_in_mb: int = 128,
        batching_window: float = 0,
        concurrency: int = 1,
        environment: Mapping[str, str] | None = None,
    ):
        if not 1 <= batch_size <= queue_ops.SQS_BATCH_LIMIT:
            raise SettingInvalid(
                "batch_size", batch_size, "this runner passes 1-10 messages a batch"
            )

        if not 0 < timeout <= MAX_TIMEOUT_SECONDS:
            raise SettingInvalid("timeout", timeout, "Lambda runs 1-900 seconds")

        if not 0 <= batching_window <= MAX_BATCHING_WINDOW_SECONDS:
            raise SettingInvalid(
                "batching_window", batching_window, "Lambda waits 0-300 seconds"
            )

        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise SettingInvalid(
                "concurrency", concurrency, "a mapping runs 1-1000 batches at once"
            )

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
        self.batching_window = batching_window
        self.concurrency = concurrency
        self.environment = dict(environment or {})
        self._sqs = sqs
        self._environments: dict[int, Environment] = {}
        self._guard = threading.Lock()
        # Every series from zero, so a rate reads 0 rather than nothing.
        for name in _MEASURES:
            metrics.process(name).labels(function_name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every execution environment this runtime started."""
        with self._guard:
            environments = list(self._environments.values())
            self._environments.clear()
        for environment in environments:
            environment.close()

    def poll_once(self, slot: int = 0) -> Invocation | None:
        """Receive one batch and invoke the handler in the environment of
        poller `slot`; None if no message came."""
        messages = self._receive_batch()
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
        segment = self._segment(messages, context)
        context.trace_header = str(_function_header(segment))
        measure = metrics.process
        function = self.function_name
        measure("migrate_lambda_invocations_total").labels(function).inc()
        measure("migrate_lambda_batch_size_messages").labels(function).observe(
            len(ids)
        )
        started = time.monotonic()
        try:
            try:
                response = self._environment(slot).invoke(
                    event, context, self.timeout
                )
            finally:
                measure("migrate_lambda_duration_seconds").labels(function).observe(
                    time.monotonic() - started
                )
            kept = reported_failures(response, ids)
        except BatchFailed as failed:
            measure("migrate_lambda_errors_total").labels(function).inc()
            if segment is not None:
                segment.failed(failed.reason)
                tracing.emit(segment.finish())
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
        if segment is not None:
            segment.annotations["failed_items"] = len(kept)
            tracing.emit(segment.finish())
        if kept:
            measure("migrate_lambda_items_failed_total").labels(function).inc(
                len(kept)
            )
            _log.info(
                "%s request %s reported %d of %d message(s) failed",
                self.function_name,
                context.aws_request_id,
                len(kept),
                len(ids),
            )
        return Invocation(context.aws_request_id, ids, deleted, kept_ids, None)

    def _segment(
        self, messages: Sequence[Mapping[str, Any]], context: LambdaContext
    ) -> tracing.Document | None:
        """The invocation's segment: as on AWS, a trace of its own, linked to
        the trace of each message of the batch. It is sampled when one of
        those traces is, else as the local sampler decides."""
        if not tracing.enabled():
            return None

        headers = [_message_header(m) for m in messages]
        linked = [h for h in headers if h is not None]
        if not any(h.sampled for h in linked) and not tracing.should_sample():
            return None

        segment = tracing.Document(
            self.function_name,
            tracing.new_trace_id(),
            origin="AWS::Lambda::Function",
        )
        segment.aws = {
            "function_arn": context.invoked_function_arn,
            "request_id": context.aws_request_id,
        }
        segment.annotations["batch_size"] = len(messages)
        for message, header in zip(messages, headers, strict=True):
            if header is not None:
                segment.link(header, message_id=str(message["MessageId"]))
        return segment

    def run(self, stop_event: threading.Event) -> None:
        """Poll and invoke with `concurrency` pollers until `stop_event` is
        set, then stop the environments; an unreachable endpoint is logged
        and retried with a growing pause."""
        pollers = [
            threading.Thread(
                target=self._poll_until,
                args=(stop_event, slot),
                name=f"{self.function_name}-poller-{slot}",
            )
            for slot in range(1, self.concurrency)
        ]
        try:
            for poller in pollers:
                poller.start()
            self._poll_until(stop_event, 0)
        finally:
            stop_event.set()
            for poller in pollers:
                if poller.is_alive():
                    poller.join()
            self.close()

    def _poll_until(self, stop_event: threading.Event, slot: int) -> None:
        failed_polls = 0
        while not stop_event.is_set():
            try:
                self.poll_once(slot)
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

    def warm(self) -> None:
        """Start every poller's environment now rather than at its first
        batch; a handler that cannot start raises `BatchFailed`."""
        for slot in range(self.concurrency):
            environment = self._environment(slot)
            if isinstance(environment, Sandbox):
                environment.start()

    def _environment(self, slot: int) -> Environment:
        with self._guard:
            found = self._environments.get(slot)
            if found is None:
                found = self._new_environment()
                self._environments[slot] = found
            return found

    def _new_environment(self) -> Environment:
        if callable(self.handler):
            return InProcess(self.handler, self.function_name)

        variables = {
            **lambda_variables(
                self.function_name,
                self.region,
                self.memory_limit_in_mb,
                self.handler,
            ),
            "MIGRATE_LAMBDA_ACCOUNT": self.account_id,
            **self.environment,
        }
        return Sandbox(
            self.handler, self.function_name, variables, self.memory_limit_in_mb
        )

    def _receive_batch(self) -> list[dict[str, Any]]:
        messages = queue_ops.receive(
            self._sqs,
            self.queue_url,
            max_messages=self.batch_size,
            wait_seconds=self.wait_seconds,
        )
        if not messages or self.batching_window <= 0:
            return messages

        closes = time.monotonic() + self.batching_window
        while len(messages) < self.batch_size:
            left = closes - time.monotonic()
            if left <= 0:
                break

            more = queue_ops.receive(
                self._sqs,
                self.queue_url,
                max_messages=self.batch_size - len(messages),
                wait_seconds=min(_LONG_POLL_LIMIT, int(left)),
            )
            # A message whose visibility ran out inside the window comes
            # again; only its latest receipt handle can delete it.
            fresh = {m["MessageId"] for m in more}
            messages = [m for m in messages if m["MessageId"] not in fresh] + more
            if not more and left < 1:
                # Long polls take whole seconds; the last fraction is slept.
                time.sleep(min(left, 0.1))
        return messages

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


def _message_header(message: Mapping[str, Any]) -> tracing.TraceHeader | None:
    system = message.get("Attributes", {}).get(tracing.ATTRIBUTE)
    attribute = message.get("MessageAttributes", {}).get(tracing.ATTRIBUTE, {})
    return tracing.TraceHeader.parse(system or attribute.get("StringValue"))


def _function_header(segment: tracing.Document | None) -> tracing.TraceHeader:
    """What Lambda puts in `_X_AMZN_TRACE_ID` for the handler."""
    if segment is None:
        return tracing.TraceHeader(tracing.new_trace_id(), None, False)

    return segment.header()


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
    parser.add_argument(
        "--batching-window", type=float, default=0, help="seconds to fill a batch"
    )
    parser.add_argument("--timeout", type=float, default=30, help="seconds")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="batches handled at once"
    )
    parser.add_argument("--memory", type=int, default=128, help="MB, as reported")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable of the function (repeatable)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="call the handler in this process (no timeout kill, no isolation)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


EXIT_STOPPED = 0
EXIT_USAGE = 2


def function_environment(pairs: Sequence[str], endpoint: str | None) -> dict[str, str]:
    """`NAME=VALUE` pairs as a mapping. With an endpoint the function gets it
    as AWS_ENDPOINT_URL, and the emulator's credentials unless the caller
    has some, as a function on AWS gets its role's."""
    variables: dict[str, str] = {}
    if endpoint:
        variables["AWS_ENDPOINT_URL"] = endpoint
        if "AWS_ACCESS_KEY_ID" not in os.environ:
            variables.update(_EMULATOR_CREDENTIALS)
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise SettingInvalid("--env", pair, "give a variable as NAME=VALUE")

        variables[name] = value
    return variables


def _queue_arn(sqs: BaseClient, queue_url: str, timeout: float) -> str:
    """The queue's ARN; a visibility timeout that does not suit the
    function's timeout is logged, not refused, so a test queue with a short
    one still serves."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"]
    )["Attributes"]
    visibility = int(attributes.get("VisibilityTimeout", "30"))
    if visibility < timeout:
        _log.warning(
            "%s has a visibility timeout of %d s, shorter than the function's "
            "timeout of %g s: a message comes back while its first call still "
            "runs (AWS refuses such a mapping)",
            queue_url,
            visibility,
            timeout,
        )
    elif visibility < 6 * timeout:
        _log.warning(
            "%s has a visibility timeout of %d s; AWS advises at least six times "
            "the function's timeout (%g s)",
            queue_url,
            visibility,
            6 * timeout,
        )
    arn: str = attributes["QueueArn"]
    return arn


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments().parse_args(argv)
    try:
        name = setup_process(arguments.function_name, level=arguments.log_level)
        handler: Handler | str = arguments.handler
        if arguments.in_process:
            handler = load_handler(arguments.handler)
        sqs = sqs_client(arguments.endpoint, arguments.region)
        queue_arn = _queue_arn(sqs, arguments.queue_url, arguments.timeout)
        runtime = LambdaRuntime(
            handler,
            arguments.function_name,
            arguments.queue_url,
            queue_arn,
            sqs,
            batch_size=arguments.batch_size,
            timeout=arguments.timeout,
            memory_limit_in_mb=arguments.memory,
            batching_window=arguments.batching_window,
            concurrency=arguments.concurrency,
            environment=function_environment(arguments.env, arguments.endpoint),
        )
        runtime.warm()
    except (MessagingError, ConfigurationError, BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    metrics.serve(name)
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
