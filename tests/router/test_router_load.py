"""Under steady load, reads move 0 -> 100 -> 0 % and the service dies once.

Reads of invoices and customers' invoices, and payments carrying an
Idempotency-Key, go through the router of a whole running system at a
fixed rate while billing's read weight goes to 100 %, its service is
killed with SIGKILL and started again, and the weight goes back to 0 %.
No request may fail and no payment may be recorded twice.

Size: MIGRATE_ROUTER_LOAD_SECONDS (15 by default, as CI runs it; the full
run is 60) at MIGRATE_ROUTER_LOAD_RATE requests per second (200). The
figures of the full run are in docs/router.md.
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
import sqlalchemy as sa

from migrate.demo import _reference_data
from migrate.extract.run import extract
from migrate.kernel.sql import create_engine
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.system import System
from monolith.billing.tables import payments
from monolith.host import Monolith

pytestmark = pytest.mark.e2e
SECONDS = float(os.environ.get("MIGRATE_ROUTER_LOAD_SECONDS", "15"))
RATE = float(os.environ.get("MIGRATE_ROUTER_LOAD_RATE", "200"))


@dataclasses.dataclass
class Outcome:
    sent: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    backends: Counter[str] = dataclasses.field(default_factory=Counter)
    backends_at_full: Counter[str] = dataclasses.field(default_factory=Counter)
    keys: list[str] = dataclasses.field(default_factory=list)
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
            tasks = set()
            for n in range(int(self.seconds * self.rate)):
                delay = started + n / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self._one(session, n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
            self.outcome.seconds = time.monotonic() - started

    async def _one(self, session: aiohttp.ClientSession, n: int) -> None:
        outcome = self.outcome
        kind = n % 10
        headers: dict[str, str] = {}
        body = None
        if kind in (3, 8):
            method = "POST"
            path = f"/invoices/{self._random.choice(self.invoices)}/payments"
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
            outcome.keys.append(headers["Idempotency-Key"])
        else:
            outcome.backends[backend] += 1
            if phase == "full":
                outcome.backends_at_full[backend] += 1


def _payments(url: str) -> tuple[int, int]:
    with create_engine(url).connect() as db:
        count, cents = db.execute(
            sa.select(sa.func.count(), sa.func.coalesce(
                sa.func.sum(payments.c.amount_cents), 0))
        ).one()
    return int(count), int(cents)


def _at(fraction: float, started: float, action: Callable[[], object]) -> None:
    delay = started + fraction * SECONDS - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    action()


def test_no_request_fails_while_reads_shift_and_the_service_dies(
    system: System,
) -> None:
    settings = system.settings
    settings.home.mkdir(parents=True)
    upgrade(settings.monolith_url)
    seed(Monolith(settings.monolith_url), synthetic.generate(60))
    system.up()
    extract(system, "billing")
    system.up()
    customers, _, invoices = _reference_data(create_engine(settings.monolith_url))
    before = _payments(settings.monolith_url)
    load = Load(settings.router_url, customers, invoices, SECONDS, RATE)
    state = system.state

    load.start()
    started = time.monotonic()

    def full() -> None:
        state.set_weight("billing", 100, "load test", "all reads")
        load.phase = "full"

    _at(0.15, started, full)
    _at(0.35, started, lambda: system.supervisor.kill("billing-service"))
    _at(0.50, started, system.up)
    _at(0.80, started, lambda: state.set_weight("billing", 0, "load test", "back"))
    load.phase = "after"
    outcome = load.join()

    after = _payments(settings.monolith_url)
    assert outcome.failures == []
    assert outcome.sent == int(SECONDS * RATE)
    assert outcome.sent / outcome.seconds >= 0.9 * RATE
    assert outcome.backends_at_full["billing"] > 0
    assert outcome.backends_at_full["monolith"] > 0  # while the service was down
    assert len(set(outcome.keys)) == len(outcome.keys)
    assert after[0] - before[0] == len(outcome.keys)
    assert after[1] - before[1] == len(outcome.keys)
    weights = [e.after for e in state.history("billing") if e.what == "read_weight"]
    assert weights == ["100", "0"]
    latencies = sorted(outcome.latencies)
    print(
        f"\n{outcome.sent} requests in {outcome.seconds:.1f} s "
        f"({outcome.sent / outcome.seconds:.0f}/s), {len(outcome.keys)} payments, "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms; reads by backend "
        f"{dict(outcome.backends)}, at 100 % {dict(outcome.backends_at_full)}"
    )
