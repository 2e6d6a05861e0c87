"""Progressive shifts: steps, gates, SLO verdicts, and rollback in any state."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from router_servers import EchoBackend, RunningRouter, eventually

from migrate.router import steering
from migrate.router.buckets import goes_to_service
from migrate.router.errors import InvalidSetting
from migrate.router.rollout import (
    Interrupted,
    RolloutReport,
    ended_by_signals,
    parse_duration,
    parse_steps,
    pause_rollout,
    resume_rollout,
    rollout,
    stop_rollout,
)
from migrate.router.slo import BREACH, INCONCLUSIVE, OK, Slo, Verdict
from migrate.router.state import (
    PAUSED,
    ROLLED_BACK,
    RUNNING,
    STOPPED,
    WAITING,
    StateStore,
    walker_gone,
)

StartRouter = Callable[..., RunningRouter]


class FakeTime:
    """A clock that moves only when the rollout sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep: Callable[[float], None] | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(self.now)


def _verdict(kind: str) -> Verdict:
    return Verdict(kind, 100, 0, 10.0, f"judged {kind}")  # type: ignore[arg-type]


def _walk(store: StateStore, time: FakeTime, steps: tuple[int, ...] = (1, 5, 25),
          **options: object) -> RolloutReport:
    options.setdefault("judge", lambda context: _verdict(OK))
    return rollout(store, "billing", steps, 60, clock=time.clock, sleep=time.sleep,
                   check_every=5, **options)  # type: ignore[arg-type]


def _weights(store: StateStore) -> list[tuple[str, str | None, str]]:
    return [(e.actor, e.after, e.reason) for e in store.history("billing")
            if e.what == "read_weight"]


@pytest.fixture
def guarded(store: StateStore) -> StateStore:
    store.set_slo("billing", Slo(0.05, 500, 30, 10), "ops", "guard")
    return store


class TestSteps:
    def test_a_rollout_walks_every_step_and_ledgers_each(
        self, guarded: StateStore
    ) -> None:
        time = FakeTime()

        report = _walk(guarded, time, reason="billing canary")

        assert report.finished
        assert report.weight == 25
        assert _weights(guarded) == [
            ("migrate shift", "1", "rollout step 1/3: billing canary"),
            ("migrate shift", "5", "rollout step 2/3: billing canary"),
            ("migrate shift", "25", "rollout step 3/3: billing canary"),
        ]
        assert time.now == 120
        assert guarded.rollout("billing").state == "done"  # type: ignore[union-attr]

    def test_a_refusing_gate_stops_the_rollout_where_it_is(
        self, guarded: StateStore
    ) -> None:
        asked: list[str] = []

        def contracts(context: str) -> str | None:
            asked.append(context)
            return "pact router-billing failed" if len(asked) == 2 else None

        report = _walk(guarded, FakeTime(), gates=[contracts])

        assert not report.finished
        assert report.weight == 1
        assert report.reason == "contracts refused 5 %: pact router-billing failed"
        assert guarded.status()["billing"].read_weight == 1
        assert guarded.rollout("billing").state == "stopped"  # type: ignore[union-attr]

    def test_a_breach_rolls_back_to_zero_and_stops(self, guarded: StateStore) -> None:
        verdicts = iter([_verdict(BREACH)])

        report = _walk(guarded, FakeTime(), judge=lambda c: next(verdicts))

        assert not report.finished
        assert report.weight == 0
        assert guarded.status()["billing"].read_weight == 0
        assert report.reason.startswith("SLO breach at 1 %")
        assert guarded.rollout("billing").state == ROLLED_BACK  # type: ignore[union-attr]

    def test_an_inconclusive_window_waits_without_moving(
        self, guarded: StateStore
    ) -> None:
        verdicts = iter([_verdict(INCONCLUSIVE)] * 3 + [_verdict(OK)] * 5)
        seen: list[tuple[int, str]] = []
        time = FakeTime()
        time.on_sleep = lambda now: seen.append((
            guarded.status()["billing"].read_weight,
            guarded.rollout("billing").state,  # type: ignore[union-attr]
        ))

        report = _walk(guarded, time, judge=lambda c: next(verdicts))

        # Twelve sleeps of 5 s at each step; three more at 1 % while the
        # window could not be judged, neither moving on nor rolling back.
        assert seen == (
            [(1, RUNNING)] * 12 + [(1, WAITING)] * 3 + [(5, RUNNING)] * 12
        )
        assert time.now == 120 + 3 * 5
        assert report.finished
        assert [e[1] for e in _weights(guarded)] == ["1", "5", "25"]

    def test_a_window_that_stays_inconclusive_stops_after_patience(
        self, guarded: StateStore
    ) -> None:
        report = _walk(guarded, FakeTime(), judge=lambda c: _verdict(INCONCLUSIVE),
                       patience=30)

        assert not report.finished
        assert report.weight == 1
        assert "could not be judged before 5 % within 30 s" in report.reason

    def test_a_hand_made_change_of_weight_ends_the_rollout(
        self, guarded: StateStore
    ) -> None:
        time = FakeTime()

        def operator(now: float) -> None:
            if now == 10:
                guarded.set_weight("billing", 0, "ana", "customers complain")

        time.on_sleep = operator

        report = _walk(guarded, time)

        assert not report.finished
        assert report.weight == 0
        assert report.reason == (
            "the weight was changed to 0 % by ana (customers complain)"
        )

    def test_a_paused_rollout_stops_its_clock_until_resumed(
        self, guarded: StateStore
    ) -> None:
        time = FakeTime()

        def operator(now: float) -> None:
            if now == 10:
                pause_rollout(guarded, "billing", "lunch")
            if now == 300:
                resume_rollout(guarded, "billing", "back")

        time.on_sleep = operator

        report = _walk(guarded, time)

        assert report.finished
        assert time.now == 120 + 290

    def test_an_operator_s_pause_and_resume_are_in_the_ledger(
        self, guarded: StateStore
    ) -> None:
        guarded.start_rollout("billing", (1, 5), 60, "ana", "canary")

        pause_rollout(guarded, "billing", "lunch", actor="dashboard")
        resume_rollout(guarded, "billing", "back", actor="dashboard")

        rows = [(e.actor, e.before, e.after, e.reason)
                for e in guarded.history("billing") if e.what == "rollout"]
        assert rows == [
            ("dashboard", "running", "paused", "lunch"),
            ("dashboard", "paused", "running", "back"),
        ]

    def test_a_stopped_rollout_ends_with_the_operator_reason(
        self, guarded: StateStore
    ) -> None:
        time = FakeTime()
        time.on_sleep = lambda now: now == 10 and stop_rollout(
            guarded, "billing", "enough for today"
        )

        report = _walk(guarded, time)

        assert not report.finished
        assert report.reason == "stopped: enough for today"
        assert report.weight == 1

    def test_steps_that_end_below_the_weight_are_refused_naming_both(
        self, guarded: StateStore
    ) -> None:
        guarded.set_weight("billing", 30, "ana", "canary")

        with pytest.raises(InvalidSetting) as refused:
            _walk(guarded, FakeTime(), steps=(10, 20))

        assert str(refused.value) == (
            "steps '10,20' for billing: its reads are at 30 %, above the last "
            "step (20 %); a progressive shift only goes up: lower them with "
            "`migrate shift billing 20`, or roll back with `migrate shift "
            "billing 0`")
        assert guarded.status()["billing"].read_weight == 30
        assert guarded.rollout("billing") is None

    def test_steps_already_passed_are_said_and_the_walk_goes_on(
        self, guarded: StateStore
    ) -> None:
        guarded.set_weight("billing", 5, "ana", "canary")

        report = _walk(guarded, FakeTime(), steps=(1, 5, 25))

        assert report.finished
        assert report.weight == 25
        assert report.events[1:3] == (
            "step 1 (1 %): passed, the reads are at 5 %",
            "step 2 (5 %): passed, the reads are at 5 %",
        )

    def test_steps_passed_over_are_counted_as_steps_walked(
        self, guarded: StateStore
    ) -> None:
        guarded.set_weight("billing", 30, "ana", "canary")

        report = _walk(guarded, FakeTime(), steps=(5, 30))

        assert report.finished
        assert guarded.rollout("billing").step == 1  # type: ignore[union-attr]

    def test_a_judged_rollout_needs_an_slo(self, store: StateStore) -> None:
        with pytest.raises(InvalidSetting, match="migrate slo billing"):
            _walk(store, FakeTime())

    def test_one_rollout_of_a_context_at_a_time(self, guarded: StateStore) -> None:
        guarded.start_rollout("billing", (1, 5), 60, "ana", "first")

        with pytest.raises(InvalidSetting, match="one rollout of a context"):
            _walk(guarded, FakeTime())


class TestSignals:
    def test_a_walk_ended_by_sigterm_is_stopped_in_the_ledger_with_why(
        self, guarded: StateStore
    ) -> None:
        time = FakeTime()

        def terminated(now: float) -> None:
            if now == 10:
                os.kill(os.getpid(), signal.SIGTERM)

        time.on_sleep = terminated

        with pytest.raises(Interrupted), ended_by_signals():
            _walk(guarded, time)

        rows = [(e.actor, e.before, e.after, e.reason)
                for e in guarded.history("billing") if e.what == "rollout"]
        assert rows == [("migrate shift", "running", "stopped",
                         "interrupted by SIGTERM")]
        assert guarded.rollout("billing").state == "stopped"  # type: ignore[union-attr]

    def test_a_signal_just_after_the_rollout_is_recorded_still_stops_it(
        self, guarded: StateStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        start = guarded.start_rollout

        def recorded_then_terminated(*args: Any, **kwargs: Any) -> Any:
            start(*args, **kwargs)
            raise Interrupted(signal.SIGTERM)

        monkeypatch.setattr(guarded, "start_rollout", recorded_then_terminated)

        with pytest.raises(Interrupted):
            _walk(guarded, FakeTime())

        assert guarded.rollout("billing").state == "stopped"  # type: ignore[union-attr]

    def test_a_signal_the_process_ignores_stays_ignored(self) -> None:
        before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            with ended_by_signals():
                os.kill(os.getpid(), signal.SIGHUP)
                ignored = signal.getsignal(signal.SIGHUP)
        finally:
            signal.signal(signal.SIGHUP, before)

        assert ignored == signal.SIG_IGN

    def test_the_handlers_before_are_put_back(self) -> None:
        before = signal.getsignal(signal.SIGTERM)

        with ended_by_signals():
            pass

        assert signal.getsignal(signal.SIGTERM) == before


def _ended_pid() -> int:
    """The pid of a process that has come and gone."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(30)
    return finished.pid


def _rollout_rows(store: StateStore) -> list[tuple[str, str | None, str | None, str]]:
    return [(e.actor, e.before, e.after, e.reason)
            for e in store.history("billing") if e.what == "rollout"]


class TestStaleRollouts:
    def test_a_walk_records_its_process_with_the_rollout(
        self, guarded: StateStore
    ) -> None:
        seen: list[tuple[int | None, str | None]] = []
        time = FakeTime()
        time.on_sleep = lambda now: seen.append(
            (guarded.rollout("billing").pid,  # type: ignore[union-attr]
             guarded.rollout("billing").host)  # type: ignore[union-attr]
        )

        _walk(guarded, time)

        assert set(seen) == {(os.getpid(), socket.gethostname())}

    def test_a_rollout_whose_walker_is_gone_is_ended_in_the_ledger(
        self, guarded: StateStore
    ) -> None:
        pid = _ended_pid()
        host = socket.gethostname()
        guarded.start_rollout("billing", (1, 5), 60, "ana", "canary", pid=pid,
                              host=host)

        ended = guarded.end_stale_rollouts("migrate status")

        why = f"the process walking it (pid {pid} on {host}) is gone"
        assert [(r.context, r.state, r.reason) for r in ended] == [
            ("billing", STOPPED, why)]
        assert _rollout_rows(guarded) == [
            ("migrate status", "running", "stopped", why)]
        assert guarded.end_stale_rollouts("migrate status") == ()

    @pytest.mark.parametrize("move", [steering.pause, steering.resume])
    def test_a_stale_rollout_is_ended_rather_than_paused_or_resumed(
        self, guarded: StateStore, move: Callable[..., int]
    ) -> None:
        guarded.start_rollout("billing", (1, 5), 60, "ana", "canary",
                              pid=_ended_pid(), host=socket.gethostname())

        with pytest.raises(InvalidSetting, match="there is no rollout to"):
            move(guarded, "billing", "bob", "lunch")

        assert guarded.rollout("billing").state == STOPPED  # type: ignore[union-attr]

    def test_a_new_rollout_ends_a_stale_one_instead_of_being_refused(
        self, guarded: StateStore
    ) -> None:
        pid = _ended_pid()
        guarded.start_rollout("billing", (1, 5), 60, "ana", "first", pid=pid,
                              host=socket.gethostname())

        report = _walk(guarded, FakeTime())

        assert report.finished
        assert _rollout_rows(guarded)[0][:3] == ("migrate shift", "running",
                                                 "stopped")
        assert f"pid {pid}" in _rollout_rows(guarded)[0][3]

    @pytest.mark.parametrize("where", ["alive here", "another host", "unknown"])
    def test_a_walker_that_may_be_alive_keeps_its_rollout(
        self, guarded: StateStore, where: str
    ) -> None:
        pid, host = {
            "alive here": (os.getpid(), socket.gethostname()),
            "another host": (_ended_pid(), "elsewhere.example"),
            "unknown": (None, None),
        }[where]
        guarded.start_rollout("billing", (1, 5), 60, "ana", "first", pid=pid,
                              host=host)

        ended = guarded.end_stale_rollouts("migrate status")

        assert ended == ()
        assert not walker_gone(guarded.rollout("billing"))  # type: ignore[arg-type]
        with pytest.raises(InvalidSetting, match="one rollout of a context"):
            _walk(guarded, FakeTime())

    def test_a_state_file_from_before_walkers_were_kept_gets_their_columns(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "old.db"
        with sqlite3.connect(path) as old:
            old.execute(
                "CREATE TABLE rollouts (context TEXT PRIMARY KEY, steps TEXT "
                "NOT NULL, every REAL NOT NULL, step INTEGER NOT NULL, state "
                "TEXT NOT NULL, reason TEXT NOT NULL, actor TEXT NOT NULL, "
                "started_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
            )
            old.execute("INSERT INTO rollouts VALUES ('billing', '[1, 5]', 60, 0, "
                        "'running', 'go', 'ana', 'then', 'then')")

        store = StateStore(path)

        kept = store.rollout("billing")
        assert kept is not None
        assert (kept.state, kept.pid, kept.host) == (RUNNING, None, None)
        assert store.end_stale_rollouts("migrate status") == ()


class TestInstantRollback:
    def test_shifting_a_context_to_zero_ends_its_rollout_in_the_ledger(
        self, guarded: StateStore
    ) -> None:
        # The walker was killed outright: nothing else would end it.
        guarded.start_rollout("billing", (10, 20), 60, "ana", "canary",
                              pid=_ended_pid(), host="elsewhere.example")
        guarded.set_weight("billing", 10, "migrate shift", "rollout step 1/2")

        steering.shift_reads(guarded, "billing", 0, "migrate shift",
                             "customers complain", gate=None)

        rollout = guarded.rollout("billing")
        assert rollout is not None
        assert (rollout.state, rollout.reason) == (ROLLED_BACK, "customers complain")
        assert _rollout_rows(guarded) == [
            ("migrate shift", "running", "rolled back", "customers complain")]
        assert guarded.status()["billing"].read_weight == 0

    def test_a_walk_sees_the_rollback_and_stops(self, guarded: StateStore) -> None:
        time = FakeTime()
        time.on_sleep = lambda now: now == 10 and steering.shift_reads(
            guarded, "billing", 0, "ana", "customers complain", gate=None)

        report = _walk(guarded, time)

        assert not report.finished
        assert (report.weight, report.reason) == (
            0, "rolled back: customers complain")

    def test_one_route_shifted_to_zero_leaves_the_rollout_running(
        self, guarded: StateStore
    ) -> None:
        guarded.start_rollout("billing", (10, 20), 60, "ana", "canary")

        steering.shift_reads(guarded, "billing", 0, "ana", "one route back",
                             gate=None, route="GET /invoices/<int:invoice_id>")

        assert guarded.rollout("billing").state == RUNNING  # type: ignore[union-attr]


class TestParsing:
    @pytest.mark.parametrize(
        ("text", "steps"),
        [("1,5,25,50,100", (1, 5, 25, 50, 100)), ("10%, 100%", (10, 100))],
    )
    def test_steps_parse(self, text: str, steps: tuple[int, ...]) -> None:
        assert parse_steps(text) == steps

    @pytest.mark.parametrize("text", ["5,1", "0,5", "5,5", "1,150", "a,b", ""])
    def test_bad_steps_are_refused_with_the_rule(self, text: str) -> None:
        with pytest.raises(InvalidSetting):
            parse_steps(text)

    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("5m", 300), ("30s", 30), ("1h", 3600), ("1m30s", 90), ("250ms", 0.25),
         ("12", 12)],
    )
    def test_durations_parse(self, text: str, seconds: float) -> None:
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["5 minutes", "-1", "0s", "m5"])
    def test_bad_durations_are_refused(self, text: str) -> None:
        with pytest.raises(InvalidSetting, match="duration"):
            parse_duration(text)


# The router's own SLO guard against a rollout in each of its states. ------


def _service_keys(weight: int) -> list[int]:
    return [n for n in range(1, 400) if goes_to_service(weight, "billing", str(n))]


class _RolloutThread:
    def __init__(self, run: Callable[[], RolloutReport]):
        self.report: RolloutReport | None = None
        self._thread = threading.Thread(target=self._run, args=(run,), daemon=True)
        self._thread.start()

    def _run(self, run: Callable[[], RolloutReport]) -> None:
        self.report = run()

    def result(self) -> RolloutReport:
        self._thread.join(30)
        assert self.report is not None
        return self.report


@pytest.fixture
def failing_router(
    guarded: StateStore, billing: EchoBackend, start_router: StartRouter
) -> Iterator[RunningRouter]:
    guarded.set_slo("billing", Slo(0.2, 500, 10, 5), "ops", "guard")
    yield start_router(slo_interval=0.05, breaker_failures=1000)


@pytest.mark.parametrize("state", ["running", PAUSED, WAITING])
def test_a_breach_rolls_back_at_once_whatever_the_rollout_is_doing(
    guarded: StateStore,
    billing: EchoBackend,
    failing_router: RunningRouter,
    state: str,
) -> None:
    release = threading.Event()
    asked: list[str] = []

    def parity(context: str) -> str | None:
        asked.append(context)
        if len(asked) > 1:
            release.wait(20)
        return None

    walk = _RolloutThread(lambda: rollout(
        guarded, "billing", (50, 100), 0.5 if state == WAITING else 60,
        gates=[parity], check_every=0.05,
    ))
    assert eventually(lambda: guarded.status()["billing"].read_weight == 50)
    if state == PAUSED:
        pause_rollout(guarded, "billing", "lunch")
    assert eventually(
        lambda: guarded.rollout("billing").state == state  # type: ignore[union-attr]
    )

    assert eventually(lambda: failing_router.get("/_router/health").json()[
        "revision"] == guarded.revision())
    billing.status = 500
    for key in _service_keys(50)[:10]:
        assert failing_router.get(f"/invoices/{key}").status_code == 200

    assert eventually(lambda: guarded.status()["billing"].read_weight == 0)
    last = [e for e in guarded.history("billing") if e.what != "phase"][-1]
    assert (last.actor, last.after) == ("router", "0")
    assert last.reason.startswith("SLO breach: error rate")
    release.set()
    report = walk.result()
    assert not report.finished
    assert report.weight == 0
    assert report.reason.startswith("rolled back: SLO breach")
