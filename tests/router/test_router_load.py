"""Under steady load, reads move 0 -> 100 -> 0 % and the service dies once.

Billing's writes are moved to its service first (the fenced flip), so the
monolith is its replica. Then reads of invoices and customers' invoices,
and payments carrying an Idempotency-Key, go through the router of a whole
running system at a fixed rate while billing's read weight goes to 100 %,
its service is killed with SIGKILL and started again at once, and the
weight goes back to 0 %. Payments sent while the service is down or dying
fail at the router, which sends them again (they carry a key) until the
service is back. No request may fail, and every payment must be recorded
exactly once: in the service's database, and in the monolith's replica
once the sync has caught up, the payments are those sent, each once, with
the id its key gives it.

Size: MIGRATE_ROUTER_LOAD_SECONDS (15 by default, as CI runs it; the full
run is 60) at MIGRATE_ROUTER_LOAD_RATE requests per second (200), sent on
schedule: a generator that fell more than 2 % short of the rate fails the
test rather than pass a lighter load. The figures of the full run are in
docs/router.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import aiohttp
import pytest
import requests
import sqlalchemy as sa

from migrate.demo import _reference_data
from migrate.extract.run import extract
from migrate.kernel.sql import create_engine
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.sync.flip import move_writes
from migrate.sync.lag import lag_by_direction
from migrate.system import System
from monolith.billing.tables import payments
from monolith.host import Monolith

pytestmark = pytest.mark.e2e
SECONDS = float(os.environ.get("MIGRATE_ROUTER_LOAD_SECONDS", "15"))
RATE = float(os.environ.get("MIGRATE_ROUTER_LOAD_RATE", "200"))


@dataclasses.dataclass
class Outcome:
    sent: int = 0
    first_sent: float = 0.0
    last_sent: float = 0.0
    failures: list[str] = dataclasses.field(default_factory=list)
    backends: Counter[str] = dataclasses.field(default_factory=Counter)
    backends_at_full: Counter[str] = dataclasses.field(default_factory=Counter)
    paid: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    latencies: list[float] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


class Load:
    """Requests at a fixed rate from their own thread and event loop."""

    def __init__(self, router: str, customers: list[str], invoices: list[int],
                 seconds: float, rate: float):
        self.router = router
        self.customers = customers
        self.invoices = invoices
        self.seconds = seconds
        self.rate = rate
        self.outcome = Outcome()
        self.phase = "before"
        self._random = random.Random(20261203)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    def start(self) -> None:
        self._thread.start()

    def join(self) -> Outcome:
        self._thread.join(self.seconds + 120)
        return self.outcome

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(limit=256)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=timeout) as session:
            started = time.monotonic()
            self.outcome.first_sent = started
            tasks = set()
            for n in range(int(self.seconds * self.rate)):
                delay = started + n / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self._one(session, n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            self.outcome.last_sent = time.monotonic()
            await asyncio.gather(*tasks)
            self.outcome.seconds = time.monotonic() - started

    @property
    def sending_rate(self) -> float:
        """Requests a second, over the time it took to send them all."""
        outcome = self.outcome
        span = outcome.last_sent - outcome.first_sent
        # n requests sent on schedule span (n - 1) intervals.
        return (outcome.sent - 1) / span if span > 0 else 0.0

    async def _one(self, session: aiohttp.ClientSession, n: int) -> None:
        outcome = self.outcome
        kind = n % 10
        headers: dict[str, str] = {}
        body = None
        invoice = 0
        if kind in (3, 8):
            method = "POST"
            invoice = self._random.choice(self.invoices)
            path = f"/invoices/{invoice}/payments"
            key = str(uuid.UUID(int=self._random.getrandbits(128)))
            headers["Idempotency-Key"] = key
            body = {"amount": "0.01"}
        elif kind == 5:
            customer = self._random.choice(self.customers)
            method, path = "GET", f"/customers/{customer}/invoices"
        else:
            method, path = "GET", f"/invoices/{self._random.choice(self.invoices)}"
        outcome.sent += 1
        phase = self.phase
        started = time.monotonic()
        try:
            async with session.request(method, self.router + path, json=body,
                                       headers=headers) as reply:
                await reply.read()
                status = reply.status
                backend = reply.headers.get("X-Migrate-Backend", "?")
        except (aiohttp.ClientError, TimeoutError) as error:
            outcome.failures.append(f"{method} {path}: {error!r}")
            return

        outcome.latencies.append(time.monotonic() - started)
        wanted = 201 if method == "POST" else 200
        if status != wanted:
            outcome.failures.append(f"{method} {path}: {status} from {backend}")
            return

        if method == "POST":
            outcome.paid.append((invoice, headers["Idempotency-Key"]))
        else:
            outcome.backends[backend] += 1
            if phase == "full":
                outcome.backends_at_full[backend] += 1


def _payments(url: str) -> dict[str, int]:
    """Every payment recorded in a database: its id and amount in cents."""
    with create_engine(url).connect() as db:
        rows = db.execute(sa.select(payments.c.payment_id, payments.c.amount_cents))
        return {str(row.payment_id): int(row.amount_cents) for row in rows}


def _payment_id(invoice_id: int, key: str) -> str:
    # As billing derives it from the Idempotency-Key (monolith/billing/routes.py).
    from monolith.billing.routes import _PAYMENT_IDS

    return str(uuid.uuid5(_PAYMENT_IDS, f"{invoice_id}:{key}"))


def _at(fraction: float, started: float, action: Callable[[], object]) -> None:
    delay = started + fraction * SECONDS - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    action()


def _synced(system: System, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while lag_by_direction(system, "billing")["to_monolith"]["events"]:
        assert time.monotonic() < deadline, "the monolith's replica never caught up"
        time.sleep(0.5)


def test_no_request_fails_and_no_write_applies_twice_while_the_service_dies(
    system: System,
) -> None:
    settings = system.settings
    settings.home.mkdir(parents=True)
    upgrade(settings.monolith_url)
    seed(Monolith(settings.monolith_url), synthetic.generate(60))
    system.up()
    extract(system, "billing")
    system.up()
    move_writes(system, "billing")
    customers, _, invoices = _reference_data(create_engine(settings.monolith_url))
    service_db = settings.service_url("billing")
    before = _payments(service_db)
    load = Load(settings.router_url, customers, invoices, SECONDS, RATE)
    state = system.state

    load.start()
    started = time.monotonic()

    def full() -> None:
        state.set_weight("billing", 100, "load test", "all reads")
        load.phase = "full"

    def crash_and_restart() -> None:
        system.supervisor.kill("billing-service")
        system.up()

    _at(0.15, started, full)
    _at(0.35, started, crash_and_restart)
    _at(0.80, started, lambda: state.set_weight("billing", 0, "load test", "back"))
    load.phase = "after"
    outcome = load.join()
    stats = requests.get(f"{settings.router_url}/_router/stats", timeout=10).json()
    _synced(system)

    sent = {_payment_id(invoice, key): 1 for invoice, key in outcome.paid}
    in_service = {k: v for k, v in _payments(service_db).items() if k not in before}
    in_replica = {k: v for k, v in _payments(settings.monolith_url).items()
                  if k not in before}
    assert outcome.failures == []
    assert outcome.sent == int(SECONDS * RATE)
    assert load.sending_rate >= 0.98 * RATE
    assert len(sent) == len(outcome.paid) > 0
    # Every payment once, the one its key names, on both sides.
    assert in_service == sent
    assert in_replica == sent
    assert stats["write_retries"].get("billing", 0) > 0
    assert outcome.backends_at_full["billing"] > 0
    assert outcome.backends_at_full["monolith"] > 0  # while the service was down
    weights = [e.after for e in state.history("billing") if e.what == "read_weight"]
    assert weights == ["100", "0"]
    latencies = sorted(outcome.latencies)
    print(
        f"\n{outcome.sent} requests in {outcome.seconds:.1f} s, sent at "
        f"{load.sending_rate:.1f}/s, {len(sent)} payments "
        f"({stats['write_retries'].get('billing', 0)} sent again by the router), "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms; reads by backend "
        f"{dict(outcome.backends)}, at 100 % {dict(outcome.backends_at_full)}"
    )
