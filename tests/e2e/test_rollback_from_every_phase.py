"""`migrate rollback billing` from every phase before finished loses nothing.

One system goes through the phases, and at each is given back to the
monolith with the command line, orders and payments going in through the
router before and after: right after extraction, while reads are shifted
(with shadowing on and a rollout running), and after the write flip. Each
test asserts what one rollback left behind.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from migrate.extract.run import extract
from migrate.kernel.sql import create_engine
from migrate.router.state import (
    ROLLED_BACK,
    SHIFTING_READS,
    SYNCING,
    WRITES_MOVED,
    ContextStatus,
)
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.settings import Settings
from migrate.sync.flip import move_writes
from migrate.system import System
from monolith.billing.tables import invoices, payments
from monolith.host import Monolith

pytestmark = pytest.mark.e2e
PHASES = ("extracted", "reads shifted", "writes moved")
PHASE_BEFORE = {
    "extracted": SYNCING,
    "reads shifted": SHIFTING_READS,
    "writes moved": WRITES_MOVED,
}


@dataclasses.dataclass
class Rollback:
    answer: subprocess.CompletedProcess
    before: ContextStatus
    after: ContextStatus
    phases: tuple[str, str]  # the context's phase before and after
    orders: list[int]  # accepted so far, this phase's included
    payments: list[str]
    monolith_invoices: set[int]
    monolith_payments: set[str]
    verified: dict[str, Any]

    @property
    def report(self) -> dict[str, Any]:
        return dict(json.loads(self.answer.stdout))


class Traffic:
    """Orders and payments through the router; what was accepted."""

    def __init__(self, router: str, customer: str):
        self.router = router
        self.customer = customer
        self.orders: list[int] = []
        self.payments: list[str] = []

    def place_and_pay(self, count: int) -> None:
        for _ in range(count):
            order = requests.post(
                f"{self.router}/orders",
                json={
                    "customer_id": self.customer,
                    "lines": [{"product_id": 1, "quantity": 2}],
                },
                timeout=30,
            )
            assert order.status_code == 201, order.text
            self.orders.append(order.json()["order_id"])
            # The invoice of a seeded order, one not paid yet.
            paid = requests.post(
                f"{self.router}/invoices/{1 + len(self.payments)}/payments",
                json={"amount": "0.01"},
                timeout=30,
            )
            assert paid.status_code == 201, paid.text
            self.payments.append(paid.json()["payment_id"])


def _rows(url: str, column: sa.Column) -> set:
    with create_engine(url).connect() as db:
        return {r[0] for r in db.execute(sa.select(column))}


def _eventually(check, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.3)
    return check()


def _migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "migrate.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _roll_back(system: System, env: dict[str, str], traffic: Traffic) -> Rollback:
    settings = system.settings
    traffic.place_and_pay(3)
    writer_url = (
        settings.monolith_url
        if system.state.status()["billing"].writer == "monolith"
        else settings.service_url("billing")
    )
    assert _eventually(
        lambda: set(traffic.orders) <= _rows(writer_url, invoices.c.invoice_id)
    )
    before = system.state.status()["billing"]
    phase_before = system.state.phase("billing")

    answer = _migrate(env, "rollback", "billing", "--reason", "drill", "--json")

    after = system.state.status()["billing"]
    phases = (phase_before, system.state.phase("billing"))
    traffic.place_and_pay(2)
    # Everything accepted reaches the service too, which follows again.
    _eventually(
        lambda: (
            set(traffic.orders)
            <= _rows(settings.service_url("billing"), invoices.c.invoice_id)
            and set(traffic.payments)
            <= _rows(settings.service_url("billing"), payments.c.payment_id)
        )
    )
    verified = _migrate(env, "verify", "billing", "--json")
    return Rollback(
        answer,
        before,
        after,
        phases,
        list(traffic.orders),
        list(traffic.payments),
        _rows(settings.monolith_url, invoices.c.invoice_id),
        _rows(settings.monolith_url, payments.c.payment_id),
        json.loads(verified.stdout),
    )


@pytest.fixture(scope="module")
def rollbacks(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Rollback]]:
    from workspaces import system_environment

    env = system_environment(tmp_path_factory.mktemp("rollback"))
    system = System(Settings.from_env(env))
    settings = system.settings
    found: dict[str, Rollback] = {}
    try:
        settings.home.mkdir(parents=True)
        upgrade(settings.monolith_url)
        data = synthetic.generate(40)
        seed(Monolith(settings.monolith_url), data)
        traffic = Traffic(settings.router_url, data.orders[0].customer_id)
        system.up()
        extract(system, "billing")
        system.up()
        state = system.state

        found["extracted"] = _roll_back(system, env, traffic)

        state.set_weight("billing", 50, "test", "half the reads")
        state.set_shadow("billing", 20, "test", "compare answers")
        state.start_rollout("billing", (50, 100), 600.0, "test", "slow rollout")
        found["reads shifted"] = _roll_back(system, env, traffic)

        state.set_weight("billing", 100, "test", "all the reads")
        move_writes(system, "billing")
        found["writes moved"] = _roll_back(system, env, traffic)
        yield found
    finally:
        system.down()


@pytest.mark.parametrize("phase", PHASES)
def test_the_rollback_command_succeeds_and_the_monolith_writes(
    rollbacks: dict[str, Rollback], phase: str
) -> None:
    done = rollbacks[phase]

    assert done.answer.returncode == 0, done.answer.stderr
    assert done.report["writer"] == "monolith"
    assert (done.after.writer, done.after.read_weight) == ("monolith", 0)
    assert not done.after.writes_held
    assert done.phases == (PHASE_BEFORE[phase], SYNCING)


@pytest.mark.parametrize("phase", PHASES)
def test_the_monolith_keeps_every_invoice_and_payment_accepted(
    rollbacks: dict[str, Rollback], phase: str
) -> None:
    done = rollbacks[phase]

    assert set(done.orders) <= done.monolith_invoices
    assert set(done.payments) <= done.monolith_payments
    assert done.verified["differences"] == []
    assert done.verified["as_of"]["outbox"] == "monolith"


def test_a_rollback_while_reads_are_shifted_ends_the_rollout_and_the_shadow(
    rollbacks: dict[str, Rollback],
) -> None:
    done = rollbacks["reads shifted"]

    assert done.before.read_weight == 50 and done.before.shadow.percent == 20
    assert done.after.shadow.percent == 0
    assert done.after.rollout is not None
    assert done.after.rollout.state == ROLLED_BACK
    assert done.report["rollout"] == ROLLED_BACK
    assert (done.report["read_weight_was"], done.report["shadow_was"]) == (50, 20)


def test_a_rollback_after_the_write_flip_moves_the_writes_back_first(
    rollbacks: dict[str, Rollback],
) -> None:
    done = rollbacks["writes moved"]

    assert done.before.writer == "billing"
    assert done.report["flip"]["writer"] == "monolith"
    assert rollbacks["extracted"].report["flip"] is None
