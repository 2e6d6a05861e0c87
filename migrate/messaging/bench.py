"""Consumer throughput: the Nameko entrypoint against a bare boto3 loop.

    python -m migrate.messaging.bench [--messages 1000] [--rounds 2]

Against one emulator, in the same run: a producer keeps a queue shallow
(about 50 messages, since moto slows down as queues grow) while a consumer
drains it, first a bare loop (receive ten, delete ten in one batch call),
then a `nameko run` service whose `consume` entrypoint does nothing but
count. Prints messages/s for each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import yaml

from migrate.kernel.events import Envelope
from migrate.messaging import queue_ops
from migrate.messaging.clients import sqs_client
from migrate.messaging.emulator import Emulator
from migrate.settings import PROJECT_ROOT
from monolith.billing.events import InvoiceIssued

SHALLOW = 50
SERVICE = """
from migrate.messaging.nameko_sqs import consume


class Counter:
    name = "counter"

    @consume({queue!r})
    def count(self, message):
        with open({seen!r}, "a") as out:
            out.write("x\\n")
"""


class Producer:
    """Keeps the queue at about SHALLOW messages until `total` were sent."""

    def __init__(self, sqs, url: str, total: int):  # type: ignore[no-untyped-def]
        self.sqs, self.url, self.total = sqs, url, total
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = Envelope.wrap(InvoiceIssued({"invoice_id": 1}), "monolith").to_json()
        while self.sent < self.total:
            depth = int(
                self.sqs.get_queue_attributes(
                    QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
            if depth >= SHALLOW:
                time.sleep(0.005)
                continue
            count = min(10, self.total - self.sent)
            self.sqs.send_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(n), "MessageBody": body} for n in range(count)],
            )
            self.sent += count


def bare_loop(sqs, url: str, total: int) -> float:  # type: ignore[no-untyped-def]
    producer = Producer(sqs, url, total)
    started = time.perf_counter()
    producer.thread.start()
    done = 0
    while done < total:
        messages = queue_ops.receive(sqs, url, wait_seconds=1)
        if messages:
            queue_ops.delete(sqs, url, [m["ReceiptHandle"] for m in messages])
            done += len(messages)
    return total / (time.perf_counter() - started)


def nameko_service(emulator: Emulator, sqs, url: str, total: int) -> float:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        seen = here / "seen.txt"
        (here / "counter_service.py").write_text(
            textwrap.dedent(SERVICE).format(
                queue=url.rsplit("/", 1)[-1], seen=str(seen)
            )
        )
        (here / "config.yaml").write_text(
            yaml.safe_dump(
                {"SQS_ENDPOINT_URL": emulator.endpoint_url, "max_workers": 10}
            )
        )
        service = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("nameko")),
                "run",
                "--config",
                "config.yaml",
                "counter_service",
            ],
            cwd=here,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": f"{here}:{PROJECT_ROOT}"},
        )
        try:
            time.sleep(3)  # start-up is not throughput
            producer = Producer(sqs, url, total)
            started = time.perf_counter()
            producer.thread.start()
            while not seen.exists() or len(seen.read_text().splitlines()) < total:
                time.sleep(0.01)
            return total / (time.perf_counter() - started)
        finally:
            service.terminate()
            service.wait(15)


def measure(messages: int, rounds: int) -> dict:
    with Emulator() as emulator:
        sqs = sqs_client(emulator.endpoint_url)
        bare, entrypoint = [], []
        for n in range(rounds):
            url = sqs.create_queue(QueueName=f"bench-bare-{n}")["QueueUrl"]
            bare.append(bare_loop(sqs, url, messages))
            url = sqs.create_queue(QueueName=f"bench-nameko-{n}")["QueueUrl"]
            entrypoint.append(nameko_service(emulator, sqs, url, messages))
    best_bare, best_nameko = max(bare), max(entrypoint)
    return {
        "messages": messages,
        "bare_boto3_per_s": round(best_bare),
        "nameko_consume_per_s": round(best_nameko),
        "ratio": round(best_nameko / best_bare, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m migrate.messaging.bench")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.messages, args.rounds), indent=2))


if __name__ == "__main__":
    main()
