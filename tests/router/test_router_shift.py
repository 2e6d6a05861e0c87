"""`migrate shift billing --steps ... --every 1s` against a whole running system.

The monolith, the router, billing's service and the rest run as real
processes (`migrate up`); reads go through the router from a thread all
along, so the router has answers to judge its SLO on. The command runs as
a user runs it, in a process of its own, and each test checks one way it
ends: every step done, a gate's refusal (contracts, data parity, shadow
differences), an operator's pause, resume and stop, and the router's own
rollback on an SLO breach.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from router_servers import eventually
from workspaces import system_environment

from migrate.contracts.verify import verify as verify_contracts
from migrate.extract.run import extract
from migrate.kernel.sql import create_engine
from migrate.router.slo import Slo
from migrate.router.state import StateStore
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.settings import Settings
from migrate.sync.parity_records import last_parity, parity_path
from migrate.system import System
from monolith.billing.tables import invoices
from monolith.host import Monolith

pytestmark = pytest.mark.e2e
INVOICES = 40


class Reads:
    """Reads of invoices through the router, about 50 a second, until stopped."""

    def __init__(self, router: str):
        self.router = router
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        session = requests.Session()
        n = 0
        while not self._stop.wait(0.02):
            n += 1
            path = f"/invoices/{n % INVOICES + 1}"
            try:
                status = session.get(self.router + path, timeout=15).status_code
            except requests.RequestException as error:
                self.failures.append(f"{path}: {error!r}")
                continue
            if status != 200:
                self.failures.append(f"{path}: {status}")


class Running:
    def __init__(self, system: System, env: dict[str, str], reads: Reads):
        self.system = system
        self.env = env
        self.reads = reads

    @property
    def state(self) -> StateStore:
        return self.system.state

    def migrate(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "migrate.cli", *arguments], env=self.env,
            capture_output=True, text=True, timeout=180,
        )

    def start(self, *arguments: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "migrate.cli", *arguments], env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def weight(self) -> int:
        return self.state.status()["billing"].read_weight

    def rollout_state(self) -> str | None:
        found = self.state.rollout("billing")
        return found.state if found else None

    def shifts(self) -> list[tuple[str, str | None]]:
        return [(e.actor, e.after) for e in self.state.history("billing")
                if e.what == "read_weight"]

    def shift_reasons(self) -> list[str]:
        return [e.reason for e in self.state.history("billing")
                if e.what == "read_weight"]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    env = system_environment(tmp_path_factory.mktemp("shift"))
    system = System(Settings.from_env(env))
    settings = system.settings
    reads = Reads(settings.router_url)
    try:
        settings.home.mkdir(parents=True)
        upgrade(settings.monolith_url)
        seed(Monolith(settings.monolith_url), synthetic.generate(INVOICES))
        system.up()
        extract(system, "billing")
        system.up()
        system.state.set_slo("billing", Slo(0.2, 2000, 5, 3), "test", "judge steps")
        reads.start()
        yield Running(system, env, reads)
    finally:
        reads.stop()
        system.down()


@pytest.fixture(scope="module")
def verified(running: Running) -> Running:
    report = verify_contracts(running.system.settings)
    assert report.ok, [m.text() for m in report.mismatches]
    return running


@pytest.fixture(autouse=True)
def at_zero(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "running" in request.fixturenames:
        found: Running = request.getfixturevalue("running")
        found.state.set_weight("billing", 0, "test", "next test")
        found.state.update_rollout("billing", state="stopped", reason="next test")


def _service_invoice(running: Running) -> Callable[[int], None]:
    """Change the freight of invoice 3 in the service's copy only, by cents;
    returns how to undo it."""
    engine = create_engine(running.system.settings.service_url("billing"))

    def nudge(cents: int) -> None:
        with engine.begin() as db:
            db.execute(sa.update(invoices).where(invoices.c.invoice_id == 3)
                       .values(freight_cents=invoices.c.freight_cents + cents))

    return nudge


def test_before_its_contracts_are_verified_no_step_is_taken(
    running: Running,
) -> None:
    done = running.migrate("shift", "billing", "--steps", "20,50,100",
                           "--every", "1s", "--json")

    payload: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == 1
    assert payload["finished"] is False
    assert (payload["error"], payload["exit_code"]) == ("rollout_stopped", 1)
    assert payload["message"] == done.stderr.strip().removeprefix("error: ")
    assert payload["read_weight"] == 0
    assert payload["reason"].startswith(
        "contracts refused 20 %: billing's contracts do not allow it")
    assert done.stderr.startswith("error: rollout of billing stopped with its "
                                  "reads at 0 %: contracts refused 20 %")
    assert running.weight() == 0
    assert running.rollout_state() == "stopped"


def test_a_shift_walks_every_step_judged_by_the_running_router(
    verified: Running,
) -> None:
    started = time.monotonic()

    done = verified.migrate("shift", "billing", "--steps", "20,50,100",
                            "--every", "1s", "--reason", "billing canary")

    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "billing: every step done; 100 % of reads go to its service.")
    for line in ("step 1/3: 20 % of reads to the service",
                 "at 20 %: next step in 1 s",
                 "SLO at 20 %: error rate 0.00%",
                 "before 50 %: contracts ok",
                 "before 50 %: shadow_differences ok",
                 "before 50 %: parity ok",
                 "step 3/3: 100 % of reads to the service"):
        assert line in done.stderr
    assert verified.shifts()[-3:] == [
        ("migrate shift", "20"), ("migrate shift", "50"), ("migrate shift", "100")]
    assert verified.shift_reasons()[-1] == "rollout step 3/3: billing canary"
    assert verified.rollout_state() == "done"
    assert took >= 2
    assert verified.reads.failures == []


def test_a_copy_out_of_parity_stops_the_shift_before_its_step(
    verified: Running,
) -> None:
    nudge = _service_invoice(verified)
    nudge(1)
    try:
        done = verified.migrate("shift", "billing", "--steps", "20,50",
                                "--every", "1s")
    finally:
        nudge(-1)

    assert done.returncode == 1
    assert ("parity refused 20 %: billing's copy is not in parity with the "
            "monolith: invoices: 1 of 1 chunks differ") in done.stderr
    assert "see `migrate verify billing`" in done.stderr
    assert verified.weight() == 0
    record = last_parity(verified.system.settings, "billing")
    assert record is not None and (record.by, record.ok) == ("migrate shift", False)


def test_a_plain_shift_is_refused_while_the_last_check_of_the_copy_failed(
    verified: Running,
) -> None:
    nudge = _service_invoice(verified)
    nudge(1)
    try:
        checked = verified.migrate("verify", "billing")
        refused = verified.migrate("shift", "billing", "25")
    finally:
        nudge(-1)
    verified.migrate("verify", "billing")
    allowed = verified.migrate("shift", "billing", "25")

    assert checked.returncode == 1
    assert refused.returncode == 1
    assert "billing's copy differed from the monolith when last checked " \
        "(migrate verify" in refused.stderr
    assert "invoices: 1 of 1 chunks differ" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert verified.shifts()[-1] == ("migrate shift", "25")


def test_a_plain_shift_is_refused_while_the_record_of_the_last_check_is_unreadable(
    verified: Running,
) -> None:
    record = parity_path(verified.system.settings, "billing")
    kept = record.read_text()
    record.write_text('{"context": "billing", "checked')
    try:
        refused = verified.migrate("shift", "billing", "10")
    finally:
        record.write_text(kept)

    assert refused.returncode == 1
    assert (f"billing's copy cannot be judged: billing's parity record {record} "
            "cannot be read (not JSON") in refused.stderr
    assert "run `migrate verify billing`" in refused.stderr
    assert verified.weight() == 0


def test_an_operator_pauses_resumes_and_stops_a_running_shift(
    verified: Running,
) -> None:
    shift = verified.start("shift", "billing", "--steps", "20,50,100",
                           "--every", "3s")
    try:
        assert eventually(lambda: verified.weight() == 20, 30)

        paused = verified.migrate("rollout", "pause", "billing", "--reason", "lunch")
        time.sleep(4)
        held = verified.weight()
        resumed = verified.migrate("rollout", "resume", "billing")
        assert eventually(lambda: verified.weight() == 50, 15)
        stopped = verified.migrate("rollout", "stop", "billing",
                                   "--reason", "enough for today")
        _, errors = shift.communicate(timeout=30)
    finally:
        shift.kill()

    assert (paused.returncode, resumed.returncode, stopped.returncode) == (0, 0, 0)
    assert held == 20
    assert "paused at 20 %: lunch" in errors
    assert "resumed at 20 %" in errors
    assert shift.returncode == 1
    assert errors.strip().splitlines()[-1] == (
        "error: rollout of billing stopped with its reads at 50 %: "
        "stopped: enough for today")
    assert verified.weight() == 50
    assert verified.shifts()[-3:] == [
        ("test", "0"), ("migrate shift", "20"), ("migrate shift", "50")]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_shift_ended_by_a_signal_records_its_rollout_as_stopped_and_why(
    verified: Running, signum: int,
) -> None:
    name = signal.Signals(signum).name
    shift = verified.start("shift", "billing", "--steps", "10,20,30", "--every", "8s")
    try:
        assert eventually(lambda: verified.weight() == 10, 30)

        shift.send_signal(signum)
        _, errors = shift.communicate(timeout=30)
    finally:
        shift.kill()

    rollout = verified.state.rollout("billing")
    ended = [(e.actor, e.before, e.after, e.reason)
             for e in verified.state.history("billing") if e.what == "rollout"]
    assert shift.returncode == 128 + signum
    assert errors.strip().splitlines()[-1:] == [
        f"error: rollout of billing stopped with its reads at 10 %: "
        f"interrupted by {name}"]
    assert rollout is not None
    assert (rollout.state, rollout.reason) == ("stopped", f"interrupted by {name}")
    assert ended[-1:] == [
        ("migrate shift", "running", "stopped", f"interrupted by {name}")]
    assert verified.weight() == 10


def _killed_at_its_first_step(verified: Running) -> subprocess.Popen[str]:
    """A `--steps 10,20,30` walk, killed with SIGKILL once reads are at 10 %."""
    shift = verified.start("shift", "billing", "--steps", "10,20,30", "--every", "8s")
    try:
        assert eventually(lambda: verified.weight() == 10, 30)
        shift.send_signal(signal.SIGKILL)
        shift.wait(30)
    finally:
        shift.kill()
    return shift


def test_a_shift_killed_outright_leaves_no_rollout_in_the_way(
    verified: Running,
) -> None:
    shift = _killed_at_its_first_step(verified)
    status = verified.migrate("status", "--json")
    again = verified.migrate("shift", "billing", "--steps", "20", "--every", "1s")

    why = f"the process walking it (pid {shift.pid} on {socket.gethostname()}) is gone"
    shown = json.loads(status.stdout)["contexts"]["billing"]["rollout"]
    ended = [(e.actor, e.before, e.after, e.reason)
             for e in verified.state.history("billing") if e.what == "rollout"]
    assert (shown["state"], shown["reason"]) == ("stopped", why)
    assert ended[-1:] == [("migrate status", "running", "stopped", why)]
    assert again.returncode == 0, again.stderr
    assert verified.weight() == 20
    assert verified.rollout_state() == "done"


def test_shifting_to_zero_ends_the_rollout_of_a_killed_shift(
    verified: Running,
) -> None:
    _killed_at_its_first_step(verified)
    back = verified.migrate("shift", "billing", "0", "--reason", "customers complain")

    rollout = verified.state.rollout("billing")
    ended = [(e.actor, e.before, e.after, e.reason)
             for e in verified.state.history("billing") if e.what == "rollout"]
    assert back.returncode == 0, back.stderr
    assert rollout is not None
    assert (rollout.state, rollout.reason) == ("rolled back", "customers complain")
    assert ended[-1:] == [
        ("migrate shift", "running", "rolled back", "customers complain")]
    assert verified.weight() == 0


def test_an_slo_breach_mid_shift_rolls_back_to_zero_and_ends_it(
    verified: Running,
) -> None:
    shift = verified.start("shift", "billing", "--steps", "50,100", "--every", "60s")
    try:
        assert eventually(lambda: verified.weight() == 50, 30)

        verified.system.supervisor.kill("billing-service")
        _, errors = shift.communicate(timeout=60)
    finally:
        shift.kill()
        verified.system.up()

    last = [e for e in verified.state.history("billing") if e.what != "phase"][-1]
    assert shift.returncode == 1
    assert (last.actor, last.what, last.after) == ("router", "read_weight", "0")
    assert last.reason.startswith("SLO breach: error rate")
    assert "rolled back: SLO breach: error rate" in errors
    assert verified.rollout_state() == "rolled back"
    assert verified.reads.failures == []


def test_shadow_differences_over_the_limit_stop_the_shift(
    verified: Running,
) -> None:
    nudge = _service_invoice(verified)
    verified.state.set_shadow("billing", 100, "test", "compare")
    nudge(1)
    try:
        # Invoice 3 of 40 differs: about 2.5 % of the copies.
        assert eventually(lambda: _shadowed(verified)["different"] >= 3, 30)
        done = verified.migrate("shift", "billing", "--steps", "20,50",
                                "--every", "1s", "--max-diff-rate", "1%")
    finally:
        nudge(-1)
        verified.state.set_shadow("billing", 0, "test", "done comparing")

    assert done.returncode == 1
    assert "shadow_differences refused 20 %: " in done.stderr
    assert "shadowed requests differed or failed" in done.stderr
    assert "limit 1.0%" in done.stderr
    assert verified.weight() == 0


def _shadowed(running: Running) -> dict[str, int]:
    from migrate.router.admin import AdminClient

    client = AdminClient.for_state(running.system.settings.state_path)
    totals: dict[str, int] = client.shadow("billing")["totals"]
    return totals


def test_steps_with_a_weight_are_a_usage_error(running: Running) -> None:
    done = running.migrate("shift", "billing", "20", "--steps", "20,50")

    assert done.returncode == 2
    assert "pass one of a WEIGHT (0-100), --steps or --writes" in done.stderr


def test_falling_steps_are_refused_naming_them(running: Running) -> None:
    done = running.migrate("shift", "billing", "--steps", "50,20")

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: steps '50,20': steps rise, each above the last")
    assert running.weight() == 0


def test_steps_below_the_current_weight_are_refused_naming_both(
    running: Running,
) -> None:
    running.state.set_weight("billing", 30, "test", "canary")

    done = running.migrate("shift", "billing", "--steps", "20")

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: steps '20' for billing: its reads are at 30 %, above the last "
        "step (20 %); a progressive shift only goes up: lower them with "
        "`migrate shift billing 20`, or roll back with `migrate shift billing 0`")
    assert running.weight() == 30


def test_a_shift_with_no_router_running_says_so(
    tmp_path: Path, running: Running,
) -> None:
    env = {**running.env, "MIGRATE_HOME": str(tmp_path / "var")}

    done = subprocess.run(
        [sys.executable, "-m", "migrate.cli", "shift", "billing", "--steps", "20"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )

    assert done.returncode == 1
    assert "is the router running" in done.stderr
