"""Nothing lost when the relays, the billing service and its consumers die.

Orders go in through the router while, at random moments, one of the
processes that carry billing's events is killed with SIGKILL and started
again, before and after the write flip: the monolith's relay, billing's
relay, the billing service (its HTTP side and its SQS consumers), the
monolith's follower of billing, and the invoice e-mail function (a consumer
of billing's events). The schedule comes from the seed: every one of them
is killed at least once before the flip and once after, the rest of the
kills fall on victims drawn at random, all at random orders. Afterwards
every order has exactly one invoice in each database, issued once, with
totals equal to the cent and one e-mail each, and the dead-letter queues
hold only the poison planted.

Size: MIGRATE_FAULT_ORDERS orders (CI runs the default; the full run is
2,000, see docs/operations.md); MIGRATE_KILL_SEED picks the schedule.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest
import requests
import sqlalchemy as sa

from migrate import names
from migrate.extract.run import extract
from migrate.kernel.sql import create_engine
from migrate.kernel.uow import queue_tables
from migrate.messaging import deadletters
from migrate.messaging.clients import sqs_client
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.sync.flip import move_writes
from migrate.system import System
from monolith.billing.tables import invoices
from monolith.host import Monolith

pytestmark = pytest.mark.e2e
ORDERS = int(os.environ.get("MIGRATE_FAULT_ORDERS", "200"))
VICTIMS = (
    "monolith-relay",
    "billing-relay",
    "billing-service",
    "billing-follower",
    "billing-invoice-email",
)
BEFORE, AFTER = "before the flip", "after the flip"


class Chaos:
    """Kills victims at orders drawn from the seed, and starts each again a
    few orders later; every victim is killed in each half at least once."""

    def __init__(self, system: System, seed: int, orders: int, kills: int):
        self.system = system
        self.random = random.Random(seed)
        self.half = orders // 2
        self.plan: dict[int, str] = {}
        for span in (range(self.half), range(self.half, orders)):
            count = max(len(VICTIMS), kills // 2)
            victims = list(VICTIMS) + [
                self.random.choice(VICTIMS) for _ in range(count - len(VICTIMS))
            ]
            self.random.shuffle(victims)
            moments = sorted(self.random.sample(span, count))
            self.plan.update(zip(moments, victims, strict=True))
        self.restart_at: dict[int, str] = {}
        self.kills: Counter[tuple[str, str]] = Counter()

    def at(self, order: int) -> None:
        if order in self.restart_at:
            self.system.up()
            del self.restart_at[order]
        victim = self.plan.get(order)
        if victim is None:
            return

        if self.system.supervisor.pid_of(victim) is None:
            # Still down from an earlier kill: bring it back to kill it again.
            self.system.up()
        if self.system.supervisor.kill(victim):
            self.kills[(victim, BEFORE if order < self.half else AFTER)] += 1
        self.restart_at[order + self.random.randint(2, 12)] = victim

    def heal(self) -> None:
        self.system.up()
        self.restart_at.clear()


def _place(
    router: str,
    customers: list[str],
    orders: range,
    chaos: Chaos,
    failures: list[str],
    placed: list[int],
) -> None:
    session = requests.Session()
    for n in orders:
        chaos.at(n)
        body = {
            "customer_id": customers[n % len(customers)],
            "lines": [{"product_id": 1 + n % 7, "quantity": 1 + n % 5}],
        }
        reply = session.post(f"{router}/orders", json=body, timeout=60)
        if reply.status_code == 201:
            placed.append(reply.json()["order_id"])
        else:
            failures.append(f"{reply.status_code} {reply.text[:100]}")
    chaos.heal()


def _issued(url: str, orders: list[int]) -> Counter:
    outbox, _ = queue_tables("billing")
    with create_engine(url).connect() as db:
        rows = db.execute(
            sa.select(outbox.c.aggregate_id).where(
                outbox.c.event_type == "InvoiceIssued"
            )
        )
        wanted = {str(o) for o in orders}
        return Counter(r[0] for r in rows if r[0] in wanted)


def _invoiced(url: str, orders: list[int]) -> dict[int, int]:
    with create_engine(url).connect() as db:
        return dict(
            db.execute(
                sa.select(invoices.c.invoice_id, invoices.c.total_cents).where(
                    invoices.c.invoice_id.in_(orders)
                )
            ).all()
        )


def test_every_order_is_invoiced_once_on_both_sides_through_kill_nine(
    system: System, workspace: dict[str, str]
) -> None:
    system = System(
        type(system.settings).from_env({**workspace, "MIGRATE_VISIBILITY_SECONDS": "4"})
    )
    settings = system.settings
    settings.home.mkdir(parents=True)
    upgrade(settings.monolith_url)
    data = synthetic.generate(20)
    seed(Monolith(settings.monolith_url), data)
    customers = [c.customer_id for c in data.customers]
    try:
        system.up()
        extract(system, "billing")
        system.up()
        resources = system.resources()
        sqs = sqs_client(settings.endpoint_url)
        consumer_queue = names.consumer_queue("northwind", "billing", "ordering")
        sqs.send_message(
            QueueUrl=resources.queue_url(consumer_queue),
            MessageBody="poison: not an event",
        )

        seed_ = int(os.environ.get("MIGRATE_KILL_SEED", "9"))
        chaos = Chaos(system, seed_, ORDERS, kills=max(2 * len(VICTIMS), ORDERS // 25))
        failures: list[str] = []
        placed: list[int] = []
        half = ORDERS // 2
        _place(settings.router_url, customers, range(half), chaos, failures, placed)
        move_writes(system, "billing", timeout=120)
        _place(
            settings.router_url, customers, range(half, ORDERS), chaos, failures, placed
        )

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            done = [
                _invoiced(settings.monolith_url, placed),
                _invoiced(settings.service_url("billing"), placed),
            ]
            mailed = len(list(settings.mail_dir.glob("*.eml")))
            if all(len(d) == len(placed) for d in done) and mailed >= len(placed):
                break
            time.sleep(1)
        dead = {
            queue: int(
                sqs.get_queue_attributes(
                    QueueUrl=resources.dead_letter_url(queue),
                    AttributeNames=["ApproximateNumberOfMessages"],
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
            for queue in system.queues_of("billing")
        }
        # Poison needs five receives, a visibility timeout apart.
        while dead[consumer_queue] == 0 and time.monotonic() < deadline + 30:
            time.sleep(1)
            dead[consumer_queue] = int(
                sqs.get_queue_attributes(
                    QueueUrl=resources.dead_letter_url(consumer_queue),
                    AttributeNames=["ApproximateNumberOfMessages"],
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
        letters = deadletters.peek(
            sqs, consumer_queue, resources.dead_letter_url(consumer_queue)
        )
        issued = _issued(settings.monolith_url, placed) + _issued(
            settings.service_url("billing"), placed
        )
    finally:
        system.down()

    assert {(victim, phase) for victim in VICTIMS for phase in (BEFORE, AFTER)} <= set(
        chaos.kills
    ), chaos.kills
    assert sum(chaos.kills.values()) == len(chaos.plan), chaos.kills
    assert failures == []
    assert len(placed) == ORDERS
    assert (len(done[0]), len(done[1]), mailed) == (ORDERS,) * 3, chaos.kills
    assert done[0] == done[1]
    assert sorted(done[0]) == sorted(placed)
    assert set(issued) == {str(o) for o in placed}
    assert max(issued.values()) == 1
    assert mailed == len(placed)
    # The planted poison, dead-lettered with its reason; twice at most, if
    # the service died between burying it and deleting it.
    assert {q: n for q, n in dead.items() if n} == {consumer_queue: len(letters)}
    assert 1 <= len(letters) <= 2
    assert all(
        d.event_id is None and d.reason.startswith("not an event envelope")
        for d in letters
    ), letters
