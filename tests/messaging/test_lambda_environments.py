"""The runtime's Lambda rules beyond judging a response: execution
environments, timeouts, batching windows, concurrency and dead letters.

Handlers named as `module:function` run in an execution environment of
their own; the modules are written into the test's folder, and each handler
leaves its traces in files, because it runs in another process.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from migrate.messaging.errors import SettingInvalid
from migrate.messaging.lambda_runtime import LambdaRuntime
from migrate.messaging.publisher import SnsPublisher

from .helpers import depth, envelope, eventually

TRACES = """
import json
import os
import time

TRACES = {traces!r}


def _trace(**fields):
    with open(TRACES, "a") as out:
        out.write(json.dumps(fields) + "\\n")


def remember(event, context):
    _trace(
        pid=os.getpid(),
        records=len(event["Records"]),
        function=os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        memory=os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
        greeting=os.environ.get("GREETING"),
        remaining=context.get_remaining_time_in_millis(),
    )


def linger(event, context):
    _trace(started=time.time(), pid=os.getpid())
    time.sleep(30)
    _trace(finished=time.time())


def overlap(event, context):
    started = time.time()
    time.sleep(0.6)
    _trace(started=started, finished=time.time())


def raise_on_import(event, context):
    return None


if os.environ.get("BROKEN"):
    raise RuntimeError("no such configuration")
"""


class Queue:
    """A topic feeding a queue, and handlers that leave traces in a file."""

    def __init__(self, tmp_path: Path, sns: Any, sqs: Any, wire: Any, **options):
        self.module = f"traced_{uuid.uuid4().hex[:8]}"
        self.traces = tmp_path / "traces.jsonl"
        source = textwrap.dedent(TRACES).format(traces=str(self.traces))
        (tmp_path / f"{self.module}.py").write_text(source)
        resources = wire(**options)
        (self.topic_arn,) = resources.topic_arns.values()
        (self.queue_url,) = resources.queue_urls.values()
        (self.queue_arn,) = resources.queue_arns.values()
        (self.dead_letter_url,) = resources.dead_letter_urls.values()
        self.sns, self.sqs = sns, sqs

    def publish(self, count: int) -> None:
        SnsPublisher(self.sns).publish_batch(
            self.topic_arn, [envelope() for _ in range(count)]
        )

    def runtime(self, handler: Any, **options: Any) -> LambdaRuntime:
        if isinstance(handler, str):
            handler = f"{self.module}:{handler}"
        return LambdaRuntime(
            handler, "send-invoice", self.queue_url, self.queue_arn, self.sqs,
            **options,
        )  # fmt: skip

    def read_traces(self) -> list[dict[str, Any]]:
        if not self.traces.exists():
            return []

        return [json.loads(line) for line in self.traces.read_text().splitlines()]


@pytest.fixture
def queue(
    tmp_path: Path, sns: Any, sqs: Any, wire: Any, monkeypatch: pytest.MonkeyPatch
) -> Queue:
    monkeypatch.syspath_prepend(str(tmp_path))
    return Queue(tmp_path, sns, sqs, wire, visibility_timeout=1)


def test_named_handler_runs_in_a_lambda_environment_of_its_own(
    queue: Queue,
) -> None:
    queue.publish(1)

    with queue.runtime(
        "remember", memory_limit_in_mb=512, environment={"GREETING": "hello"}
    ) as runtime:
        invocation = runtime.poll_once()

    (trace,) = queue.read_traces()
    assert invocation is not None and invocation.failure is None
    assert trace["pid"] != os.getpid()
    assert trace["function"] == "send-invoice"
    assert trace["memory"] == "512"
    assert trace["greeting"] == "hello"
    assert 0 < trace["remaining"] <= 30_000


def test_an_environment_serves_invocations_one_after_another(queue: Queue) -> None:
    with queue.runtime("remember") as runtime:
        queue.publish(1)
        eventually(runtime.poll_once)
        queue.publish(1)
        eventually(runtime.poll_once)

    first, second = queue.read_traces()
    assert first["pid"] == second["pid"]


def test_handler_still_running_at_its_timeout_is_stopped_and_fails_the_batch(
    queue: Queue,
) -> None:
    queue.publish(2)

    with queue.runtime("linger", timeout=1) as runtime:
        invocation = runtime.poll_once()

    assert invocation is not None
    assert "timeout" in (invocation.failure or "")
    assert invocation.deleted == ()
    assert [t for t in queue.read_traces() if "finished" in t] == []
    assert depth(queue.sqs, queue.queue_url) == 2


def test_after_a_timeout_the_next_batch_gets_a_fresh_environment(
    queue: Queue,
) -> None:
    queue.publish(1)

    with queue.runtime("linger", timeout=1) as runtime:
        runtime.poll_once()
        eventually(runtime.poll_once)

    first, second = queue.read_traces()
    assert first["pid"] != second["pid"]


def test_handler_that_cannot_start_fails_the_batch(
    queue: Queue,
) -> None:
    queue.publish(1)

    with queue.runtime("raise_on_import", environment={"BROKEN": "1"}) as runtime:
        invocation = runtime.poll_once()

    assert invocation is not None
    assert "no such configuration" in (invocation.failure or "")
    assert depth(queue.sqs, queue.queue_url) == 1


def test_batching_window_waits_for_messages_sent_after_the_first(
    tmp_path: Path, sns: Any, sqs: Any, wire: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    queue = Queue(tmp_path, sns, sqs, wire, visibility_timeout=30)
    queue.publish(1)
    later = threading.Timer(0.5, queue.publish, args=(2,))
    later.start()

    with queue.runtime("remember", batching_window=2) as runtime:
        invocation = runtime.poll_once()
    later.join()

    assert invocation is not None and invocation.failure is None
    assert len(invocation.received) == 3
    assert [t["records"] for t in queue.read_traces()] == [3]


def test_without_a_window_the_first_receive_is_the_batch(queue: Queue) -> None:
    queue.publish(1)
    later = threading.Timer(0.5, queue.publish, args=(2,))
    later.start()

    with queue.runtime("remember") as runtime:
        invocation = runtime.poll_once()
    later.join()

    assert invocation is not None and invocation.failure is None
    assert len(invocation.received) == 1


def test_concurrency_bounds_the_batches_handled_at_once(queue: Queue) -> None:
    queue.publish(6)
    stop = threading.Event()
    runtime = queue.runtime("overlap", batch_size=1, concurrency=2, timeout=10)
    poller = threading.Thread(target=runtime.run, args=(stop,))

    poller.start()
    try:
        eventually(lambda: len(queue.read_traces()) == 6, timeout=60)
    finally:
        stop.set()
        poller.join()

    spans = [(t["started"], t["finished"]) for t in queue.read_traces()]
    at_once = max(
        sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans
    )
    assert at_once == 2


def test_batch_failing_every_time_reaches_the_dead_letter_queue(
    tmp_path: Path, sns: Any, sqs: Any, wire: Any
) -> None:
    queue = Queue(tmp_path, sns, sqs, wire, visibility_timeout=1, dead_letter_after=2)
    queue.publish(2)

    def refuse(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("the mail server is down")

    runtime = queue.runtime(refuse)
    failures = []
    deadline = time.monotonic() + 20
    while depth(sqs, queue.queue_url) and time.monotonic() < deadline:
        invocation = runtime.poll_once()
        if invocation is not None:
            failures.append(invocation.failure)

    assert len(failures) >= 2
    assert all("mail server is down" in (f or "") for f in failures)
    assert depth(sqs, queue.queue_url) == 0
    assert depth(sqs, queue.dead_letter_url) == 2


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": 42}]},
        {"batchItemFailures": [None]},
        {"batchItemFailures": "all of them"},
        [{"itemIdentifier": "x"}],
        {"batchItemFailures": [{"itemIdentifier": {"id": "x"}}]},
    ],
    ids=["number-id", "null-entry", "string-list", "list-response", "object-id"],
)
def test_other_malformed_failure_reports_fail_the_whole_batch(
    queue: Queue, response: Any
) -> None:
    queue.publish(2)

    invocation = queue.runtime(lambda event, context: response).poll_once()

    assert invocation is not None
    assert invocation.failure is not None
    assert depth(queue.sqs, queue.queue_url) == 2


@pytest.mark.parametrize(
    ("setting", "value"),
    [("batching_window", 301), ("concurrency", 0), ("timeout", 901)],
)
def test_settings_outside_lambdas_ranges_are_refused(
    queue: Queue, setting: str, value: int
) -> None:
    with pytest.raises(SettingInvalid, match=f"{setting} {value}"):
        queue.runtime("remember", **{setting: value})
