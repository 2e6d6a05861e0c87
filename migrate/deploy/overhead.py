"""What the local Lambda runtime costs per invocation, beside a direct call.

    python -m migrate.deploy.overhead [--rounds 200]

Starts its own emulator, wires a topic to a queue, and times, for a batch
of one record and a batch of ten, in the same run:

- direct: billing's `invoice_email` handler called with a ready event;
- in-process: the runtime building the event and context, calling the
  handler and judging its response (no SQS calls);
- sandboxed: the same through an execution environment (a child process;
  the event and the response cross a pipe);
- poll: a whole `poll_once` against the emulator (receive, invoke in the
  execution environment, delete), the messages published beforehand.

It prints the median and 95th percentile in milliseconds and each way's
overhead over the direct call. Figures, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from migrate.kernel.events import Envelope
from migrate.messaging.clients import sns_client, sqs_client
from migrate.messaging.emulator import Emulator
from migrate.messaging.lambda_runtime import (
    InProcess,
    LambdaContext,
    LambdaRuntime,
    Sandbox,
    function_environment,
    lambda_variables,
    reported_failures,
)
from migrate.messaging.publisher import SnsPublisher
from migrate.messaging.topology import Queue, Subscription, Topic, Topology, ensure

HANDLER = "monolith.billing.functions:invoice_email"
FUNCTION = "northwind-billing-invoice-email"


def _issued(invoice_id: int) -> Envelope:
    invoice = {
        "invoice_id": invoice_id, "customer_id": "ALFKI",
        "issued_at": "2026-12-03T10:00:00+00:00", "freight": "32.38",
        "total": "200.38", "paid": "0.00", "status": "open", "version": 1,
        "lines": [{"product_id": 11, "unit_price": "14.00", "quantity": 12,
                   "discount": "0", "amount": "168.00"}],
        "payments": [],
    }  # fmt: skip
    return Envelope(
        str(uuid.uuid4()), "InvoiceIssued", "billing", str(invoice_id), 1,
        "monolith", "2026-12-03T10:00:00+00:00", {"invoice": invoice},
    )  # fmt: skip


def _message(envelope: Envelope, n: int) -> dict[str, Any]:
    body = envelope.to_json()
    return {
        "MessageId": f"m-{n}", "ReceiptHandle": f"h-{n}", "Body": body,
        "MD5OfBody": "", "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": {
            k: {"StringValue": v, "DataType": "String"}
            for k, v in envelope.attributes().items()
        },
    }  # fmt: skip


def _times(rounds: int, once: Callable[[int], None]) -> list[float]:
    spent = []
    for n in range(rounds):
        started = time.perf_counter()
        once(n)
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def _summary(label: str, spent: list[float], direct: float | None) -> str:
    median = statistics.median(spent)
    p95 = statistics.quantiles(spent, n=20)[-1]
    extra = f"  (+{median - direct:.2f} ms)" if direct is not None else ""
    return f"  {label:<12} median {median:7.2f} ms   p95 {p95:7.2f} ms{extra}"


def measure(rounds: int, batch: int, endpoint: str) -> list[str]:
    queue_arn = "arn:aws:sqs:us-east-1:000000000000:overhead"
    from monolith.billing import functions

    runtime = LambdaRuntime(
        functions.invoice_email,
        FUNCTION,
        "unused",
        queue_arn,
        None,
        batch,  # type: ignore[arg-type]
    )
    invoice_ids = iter(range(100_000, 10_000_000))

    def messages() -> list[dict[str, Any]]:
        return [_message(_issued(next(invoice_ids)), n) for n in range(batch)]

    def direct(_: int) -> None:
        event = runtime.event(prepared.pop())
        context = LambdaContext(FUNCTION, "us-east-1", "000000000000", 30)
        functions.invoice_email(event, context)

    in_process = InProcess(functions.invoice_email, FUNCTION)

    def through(environment: Any) -> Callable[[int], None]:
        def once(_: int) -> None:
            batch_messages = prepared.pop()
            event = runtime.event(batch_messages)
            context = LambdaContext(FUNCTION, "us-east-1", "000000000000", 30)
            ids = tuple(r["messageId"] for r in event["Records"])
            reported_failures(environment.invoke(event, context, 30), ids)

        return once

    lines = [f"batches of {batch}:"]
    prepared = [messages() for _ in range(rounds)]
    direct_times = _times(rounds, direct)
    baseline = statistics.median(direct_times)
    lines.append(_summary("direct", direct_times, None))
    prepared = [messages() for _ in range(rounds)]
    lines.append(_summary("in-process", _times(rounds, through(in_process)), baseline))

    variables = {
        **lambda_variables(FUNCTION, "us-east-1", 128, HANDLER),
        "MAIL_DIR": os.environ["MAIL_DIR"],
    }
    sandbox = Sandbox(HANDLER, FUNCTION, variables)
    sandbox.start()
    try:
        prepared = [messages() for _ in range(rounds)]
        lines.append(_summary("sandboxed", _times(rounds, through(sandbox)), baseline))
    finally:
        sandbox.close()

    lines.append(_summary("poll", _poll_times(rounds, batch, endpoint), baseline))
    return lines


def _poll_times(rounds: int, batch: int, endpoint: str) -> list[float]:
    sns, sqs = sns_client(endpoint), sqs_client(endpoint)
    stem = f"overhead-{uuid.uuid4().hex[:6]}"
    resources = ensure(
        Topology(
            [Topic(stem)], [Queue(stem, visibility_timeout=180)],
            [Subscription(stem, stem)],
        ),
        sns, sqs,
    )  # fmt: skip
    environment = function_environment([], endpoint)
    environment["MAIL_DIR"] = os.environ["MAIL_DIR"]
    publisher = SnsPublisher(sns)
    invoice_ids = iter(range(20_000_000, 30_000_000))
    spent = []
    with LambdaRuntime(
        HANDLER,
        FUNCTION,
        resources.queue_url(stem),
        resources.queue_arn(stem),
        sqs,
        batch,
        environment=environment,
    ) as runtime:
        runtime.warm()
        for _ in range(rounds):
            publisher.publish_batch(
                resources.topic_arn(stem),
                [_issued(next(invoice_ids)) for _ in range(batch)],
            )
            started = time.perf_counter()
            invocation = runtime.poll_once()
            spent.append((time.perf_counter() - started) * 1000)
            if invocation is None or len(invocation.deleted) != batch:
                raise RuntimeError(f"a poll did not take the whole batch: {invocation}")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m migrate.deploy.overhead")
    parser.add_argument("--rounds", type=int, default=200)
    arguments = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {arguments.rounds} rounds each"
    )
    with tempfile.TemporaryDirectory() as mail, Emulator() as emulator:
        os.environ["MAIL_DIR"] = mail
        for batch in (1, 10):
            print("\n".join(measure(arguments.rounds, batch, emulator.endpoint_url)))


if __name__ == "__main__":
    main()
