"""The commands a user types, on a running system, as the user types them.

One story runs once for the module, every step a `migrate` command in its
own process: seed, up, extract billing, verify the contracts, backfill
(once at a terminal, once into a pipe), `migrate shift billing 50`, reads
through the router, `migrate shift billing --writes`, then an order and a
payment through the router. Each test asserts one fact of it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from workspaces import system_environment

from migrate.kernel.sql import create_engine
from migrate.kernel.uow import queue_tables
from migrate.settings import Settings
from monolith.billing.tables import invoices, payments

pytestmark = pytest.mark.e2e
MIGRATE = [sys.executable, "-m", "migrate.cli"]
ORDERS = 40
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclasses.dataclass
class Story:
    settings: Settings
    backfill_at_terminal: str
    backfill_piped: subprocess.CompletedProcess
    shifted: subprocess.CompletedProcess
    reads: dict[int, list[str]]
    writes: subprocess.CompletedProcess
    status: dict[str, Any]
    ordered_after_flip: int
    paid_after_flip: int
    payment: requests.Response


def migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    answer = subprocess.run([*MIGRATE, *args], env=env, capture_output=True,
                            text=True, timeout=300)
    return answer


def step(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    answer = migrate(env, *args)
    assert answer.returncode == 0, (args, answer.stdout[-2000:], answer.stderr[-2000:])
    return answer


def at_a_terminal(env: dict[str, str], *args: str) -> str:
    """What the command writes to stderr when stderr is a terminal."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([*MIGRATE, *args], env={**env, "COLUMNS": "100"},
                               stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(120) == 0, seen.decode(errors="replace")
    return ANSI.sub("", seen.decode(errors="replace"))


def _eventually(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.3)
    return found


def _outbox(url: str, event_type: str, aggregate: int) -> list[Any]:
    outbox, _ = queue_tables("billing")
    with create_engine(url).connect() as db:
        return list(db.execute(sa.select(outbox).where(
            outbox.c.event_type == event_type,
            outbox.c.aggregate_id == str(aggregate),
        )))


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    env = system_environment(tmp_path_factory.mktemp("cli"))
    settings = Settings.from_env(env)
    router = settings.router_url
    try:
        step(env, "seed", "--orders", str(ORDERS))
        step(env, "up")
        step(env, "extract", "billing")
        step(env, "contracts", "verify")
        terminal = at_a_terminal(env, "backfill", "billing")
        piped = step(env, "backfill", "billing")

        shifted = migrate(env, "shift", "billing", "50")
        reads: dict[int, list[str]] = {}
        for _ in range(2):
            for invoice in range(1, ORDERS + 1):
                reply = requests.get(f"{router}/invoices/{invoice}", timeout=30)
                assert reply.status_code == 200, reply.text
                reads.setdefault(invoice, []).append(
                    reply.headers["X-Migrate-Backend"])

        writes = migrate(env, "shift", "billing", "--writes")
        status = json.loads(step(env, "status", "--json").stdout)
        customer = requests.get(f"{router}/invoices/1", timeout=30).json()[
            "customer_id"]
        order = requests.post(
            f"{router}/orders",
            json={"customer_id": customer,
                  "lines": [{"product_id": 1, "quantity": 2}]},
            timeout=30,
        )
        assert order.status_code == 201, order.text
        payment = requests.post(
            f"{router}/invoices/2/payments", json={"amount": "0.50"},
            headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=30,
        )
        _eventually(lambda: any(
            row.published_at
            for row in _outbox(settings.service_url("billing"), "PaymentReceived", 2)
        ))
        yield Story(settings, terminal, piped, shifted, reads, writes, status,
                    order.json()["order_id"], 2, payment)
    finally:
        migrate(env, "down")


def test_shift_50_sends_half_the_reads_to_the_service(story: Story) -> None:
    backends = Counter(seen[0] for seen in story.reads.values())

    assert story.shifted.returncode == 0, story.shifted.stderr
    assert story.shifted.stdout.strip() == (
        "billing: 50 % of reads now go to its service.")
    assert set(backends) == {"monolith", "billing"}
    assert min(backends.values()) >= ORDERS // 5


def test_each_invoice_keeps_its_backend_after_the_shift(story: Story) -> None:
    changed = {i: seen for i, seen in story.reads.items() if len(set(seen)) != 1}

    assert changed == {}


def test_shift_writes_makes_the_service_billing_s_writer(story: Story) -> None:
    assert story.writes.returncode == 0, story.writes.stderr
    assert re.fullmatch(
        r"billing's writes moved to its service in \d+\.\d s "
        r"\(\d+ kept events replayed\)\.\n",
        story.writes.stdout,
    )
    assert story.status["contexts"]["billing"]["writer"] == "billing"


def test_an_order_after_the_flip_is_invoiced_by_the_service(story: Story) -> None:
    service = story.settings.service_url("billing")
    monolith = story.settings.monolith_url

    issued = _eventually(
        lambda: _outbox(service, "InvoiceIssued", story.ordered_after_flip))
    assert [row.origin for row in issued] == ["service"]
    assert _outbox(monolith, "InvoiceIssued", story.ordered_after_flip) == []


def test_a_payment_after_the_flip_is_published_from_the_service_s_outbox(
    story: Story,
) -> None:
    service = story.settings.service_url("billing")
    monolith = story.settings.monolith_url
    payment_id = story.payment.json()["payment_id"]

    published = _outbox(service, "PaymentReceived", story.paid_after_flip)
    replica = _eventually(lambda: _rows(monolith, story.paid_after_flip))
    assert story.payment.status_code == 201
    assert story.payment.headers["X-Migrate-Backend"] == "billing"
    assert [(row.origin, bool(row.published_at)) for row in published] == [
        ("service", True)]
    assert json.loads(published[0].payload)["data"]["payment_id"] == payment_id
    assert _outbox(monolith, "PaymentReceived", story.paid_after_flip) == []
    assert payment_id in replica


def _rows(url: str, invoice_id: int) -> list[Any]:
    with create_engine(url).connect() as db:
        paid = db.execute(sa.select(invoices.c.paid_cents).where(
            invoices.c.invoice_id == invoice_id)).scalar()
        found = [r[0] for r in db.execute(sa.select(payments.c.payment_id).where(
            payments.c.invoice_id == invoice_id))]
    return found if paid else []


def test_backfill_at_a_terminal_draws_a_bar_per_table(story: Story) -> None:
    assert re.search(rf"invoices\s+━+\s+{ORDERS}/{ORDERS}", story.backfill_at_terminal)


def test_backfill_into_a_pipe_says_each_table_s_count_on_stderr(story: Story) -> None:
    said = story.backfill_piped.stderr.splitlines()

    assert f"invoices {ORDERS}/{ORDERS}" in said
    assert any(re.fullmatch(r"invoice_lines \d+/\d+", line) for line in said)
    assert story.backfill_piped.stdout.startswith("Copied ")
