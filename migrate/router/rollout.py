"""Progressive shifts: walk a context's reads through weights, step by step.

`rollout(store, "billing", (1, 5, 25, 50, 100), every=300, judge=...,
gates=[...])` sets 1 %, waits five minutes, and before each next step
asks, in order:

1. the SLO judge (the router's verdict on the service's answers at the
   current weight): *ok* moves on; *breach* rolls the context back to 0 %
   and stops; *inconclusive* (too little traffic in the window) neither
   moves nor rolls back: the rollout waits, re-asking every `check_every`
   seconds, for at most `patience` seconds (twice `every` by default),
   then stops because nothing could be judged;
2. each gate, a callable `gate(context) -> str | None` returning why the
   shift must not go on (contracts broken, data out of parity, too many
   shadow differences) or None. The first refusal stops the rollout where
   it is, with that reason.

A rollout only raises the weight. Steps at or below the weight it starts
from are passed over, each said so (running `--steps 1,5,25,50,100` again
after a stop at 25 % goes on to 50 %); a last step below that weight is
refused before anything starts, as the walk would end lower than asked.

While it waits between steps it watches the state store: the router
rolling the context back (an SLO breach seen by the router itself), an
operator changing the weight by hand, or `stop_rollout` ends it at once
with the ledger's reason; `pause_rollout` stops the clock until
`resume_rollout`. The rollout's progress is kept in the store (`status`
shows it), its weight changes go to the ledger like any other.

A judge or a gate that fails with the kit's error (the router's admin API
unreachable, a database gone) stops the rollout where it is, with that
error as its reason: what cannot be judged does not move. An interrupted
rollout is recorded as stopped, in the ledger with the signal that ended
it: SIGINT (Ctrl-C) always, SIGTERM and SIGHUP inside `ended_by_signals`,
which `migrate shift` walks in. A walk killed outright (SIGKILL, a crash)
cannot say so: the store keeps the walking process's pid and host with
the rollout, and a rollout whose walker is gone is ended as stale by the
next rollout of the context or by `migrate status`.

The SLO is enforced by the router whether or not a rollout runs, so a
breach sets the weight to 0 at once whatever state the rollout is in
(running, paused, or waiting on a gate); the rollout only notices.

What this module does not do: move writes (`migrate shift --writes`), or
roll back on a gate's refusal (a broken contract is not an outage).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType

from migrate.errors import MigrateError
from migrate.router.errors import InvalidSetting
from migrate.router.slo import BREACH, INCONCLUSIVE, Verdict
from migrate.router.state import (
    DONE,
    PAUSED,
    ROLLED_BACK,
    RUNNING,
    STOPPED,
    WAITING,
    Rollout,
    StateStore,
)

log = logging.getLogger(__name__)

Gate = Callable[[str], "str | None"]
Judge = Callable[[str], Verdict]
Say = Callable[[str], None]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
# While it waits at a step, how often a rollout says how long is left.
_TOLD_EVERY = 60.0


@dataclasses.dataclass(frozen=True)
class RolloutReport:
    """How far a rollout went, and why it ended where it did."""

    context: str
    steps: tuple[int, ...]
    weight: int
    finished: bool
    reason: str
    events: tuple[str, ...]

    def text(self) -> str:
        if self.finished:
            return (
                f"{self.context}: every step done; {self.weight} % of reads go "
                "to its service."
            )

        return (
            f"{self.context}: rollout stopped with {self.weight} % of reads on "
            f"its service: {self.reason}"
        )


def parse_steps(text: str) -> tuple[int, ...]:
    """`"1,5,25,50,100"` -> (1, 5, 25, 50, 100); rising whole percents."""
    try:
        steps = tuple(int(part.strip().rstrip("%")) for part in text.split(","))
    except ValueError:
        raise InvalidSetting(
            None, "steps", text, "steps are whole percents separated by commas"
        ) from None

    check_steps(steps)
    return steps


def check_steps(steps: Sequence[int]) -> None:
    if not steps:
        raise InvalidSetting(None, "steps", "", "a rollout has at least one step")

    for weight in steps:
        if isinstance(weight, bool) or not isinstance(weight, int) or not (
            0 < weight <= 100
        ):
            raise InvalidSetting(None, "step", weight, "steps run 1-100 %")

    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise InvalidSetting(
            None, "steps", ",".join(map(str, steps)), "steps rise, each above the last"
        )


def parse_duration(text: str) -> float:
    """`"5m"`, `"30s"`, `"1h"`, `"1m30s"`, `"250ms"` or plain seconds."""
    stripped = text.strip()
    try:
        seconds = float(stripped)
    except ValueError:
        parts = _DURATION.findall(stripped)
        if not parts or "".join(n + u for n, u in parts) != stripped:
            raise InvalidSetting(
                None, "duration", text, "a duration is like 5m, 30s, 1h or 1m30s"
            ) from None

        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        seconds = sum(float(n) * scale[u] for n, u in parts)
    if seconds <= 0:
        raise InvalidSetting(None, "duration", text, "a duration is above 0 s")

    return seconds


class Interrupted(BaseException):
    """The process walking a rollout was told to end by a signal.

    A BaseException, as KeyboardInterrupt is, so that no `except Exception`
    between the signal and the walk can swallow it."""

    def __init__(self, signum: int):
        self.signum = signum
        self.signal = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal}")


@contextlib.contextmanager
def ended_by_signals(
    signums: Sequence[int] = (signal.SIGTERM, signal.SIGHUP),
) -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise `Interrupted` as SIGINT raises
    KeyboardInterrupt, so a walk ended by `kill` or a closed terminal is
    recorded as stopped, with why, instead of dying with its rollout left
    running. A signal the process ignores stays ignored (`nohup` keeps a
    walk going when its terminal closes), and only the first signal
    raises: a second one must not cut the recording of the first short.
    Outside the main thread, where Python runs no signal handler, it does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    raised = False

    def interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Interrupted(signum)

    before = {n: signal.getsignal(n) for n in signums}
    for signum, handler in before.items():
        if handler != signal.SIG_IGN:
            signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


class _Ended(Exception):
    """The rollout must stop: `reason` says why, `rolled_back` if at 0 %."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def rollout(
    store: StateStore,
    context: str,
    steps: Sequence[int],
    every: float,
    *,
    judge: Judge | None = None,
    gates: Iterable[Gate] = (),
    actor: str = "migrate shift",
    reason: str = "",
    patience: float | None = None,
    check_every: float = 1.0,
    progress: Say | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutReport:
    """Walk the context's read weight through `steps`, `every` seconds apart.

    `judge` gives the SLO's verdict (the router's, through its admin API,
    in production); without one, steps move on time alone. Returns how far
    it went; it never raises for a stopped rollout, only for bad input.
    """
    steps = tuple(steps)
    check_steps(steps)
    if every <= 0:
        raise InvalidSetting(context, "step interval", every, "it is above 0 s")

    gates = tuple(gates)
    store.history(context)  # raises UnknownContext, naming the known ones
    status = store.status()[context]
    if steps[-1] < status.read_weight:
        # Walking there would lower the weight: not what a rollout is for.
        raise InvalidSetting(
            context, "steps", ",".join(map(str, steps)),
            f"its reads are at {status.read_weight} %, above the last step "
            f"({steps[-1]} %); a progressive shift only goes up: lower them "
            f"with `migrate shift {context} {steps[-1]}`, or roll back with "
            f"`migrate shift {context} 0`",
        )

    if judge is not None and status.slo is None:
        raise InvalidSetting(
            context, "rollout", ",".join(map(str, steps)),
            f"a rollout needs an SLO to judge each step; set one with "
            f"`migrate slo {context}`",
        )

    walk = _Walk(store, context, steps, every, judge, gates, actor, reason,
                 patience if patience is not None else 2 * every, check_every,
                 progress, clock, sleep)
    return walk.run()


class _Walk:
    def __init__(
        self, store: StateStore, context: str, steps: tuple[int, ...], every: float,
        judge: Judge | None, gates: tuple[Gate, ...], actor: str, reason: str,
        patience: float, check_every: float, progress: Say | None,
        clock: Callable[[], float], sleep: Callable[[float], None],
    ):
        self.store = store
        self.context = context
        self.steps = steps
        self.every = every
        self.judge = judge
        self.gates = gates
        self.actor = actor
        self.reason = reason
        self.patience = patience
        self.check_every = check_every
        self.progress = progress
        self.clock = clock
        self.sleep = sleep
        self.events: list[str] = []
        self.weight = 0

    def run(self) -> RolloutReport:
        store, context = self.store, self.context
        self.weight = store.status()[context].read_weight
        started = False
        # The rollout is started inside the try: a signal that lands just
        # after it is recorded must still record it stopped.
        try:
            store.start_rollout(context, self.steps, self.every, self.actor,
                                self.reason or "rollout", pid=os.getpid(),
                                host=socket.gethostname())
            started = True
            self._say(f"rollout of {context} over {_steps(self.steps)}, every "
                      f"{self.every:g} s, from {self.weight} %")
            for index, weight in enumerate(self.steps):
                if weight <= self.weight:
                    passed = (f"step {index + 1} ({weight} %): passed, the reads "
                              f"are at {self.weight} %")
                    store.update_rollout(context, state=RUNNING, reason=passed,
                                         step=index)
                    self._say(passed)
                    continue

                self._before_step(index, weight)
                self._move(index, weight)
                if index < len(self.steps) - 1:
                    self._dwell(weight)
        except _Ended as ended:
            return self._report(False, ended.reason)
        except MigrateError as error:
            if not started:
                raise  # refused before it began: another walk's, say
            # A judge or gate that cannot answer (the router gone, a
            # database unreachable) proves nothing: stop where it is.
            reason = f"stopped: {error}"
            store.update_rollout(context, state=STOPPED, reason=reason)
            self._say(reason)
            return self._report(False, reason)
        except BaseException as interrupted:
            why = _interruption(interrupted)
            if started or self._recorded_as_ours():
                store.update_rollout(context, state=STOPPED, reason=why,
                                     actor=self.actor)
            self._say(f"stopped: {why}")
            raise

        store.update_rollout(context, state=DONE, reason="every step done")
        return self._report(True, "every step done")

    def _recorded_as_ours(self) -> bool:
        """Whether the context's active rollout is this process's walk (the
        signal came after it was recorded, before the walk knew)."""
        rollout = self.store.rollout(self.context)
        return (
            rollout is not None and rollout.active and rollout.pid == os.getpid()
            and rollout.host == socket.gethostname()
        )

    def _before_step(self, index: int, weight: int) -> None:
        if self.judge is not None and self.weight > 0:
            self._await_verdict(weight)

        for gate in self.gates:
            name = getattr(gate, "__name__", "gate")
            self._set_state(WAITING, f"before {weight} %: asking {name}")
            refusal = gate(self.context)
            self._check_still_ours(self.weight)
            if refusal:
                self._stop(f"{name} refused {weight} %: {refusal}")
            self._say(f"before {weight} %: {name} ok")

        self._wait_while_paused(self.weight)

    def _await_verdict(self, weight: int) -> None:
        assert self.judge is not None
        waited_since = self.clock()
        while True:
            self._wait_while_paused(self.weight)
            verdict = self.judge(self.context)
            self._check_still_ours(self.weight)
            if verdict.kind == BREACH:
                reason = f"SLO breach at {self.weight} %: {verdict.reason}"
                self.store.roll_back(self.context, self.actor, reason)
                self.weight = 0
                self._end(ROLLED_BACK, reason)
            if verdict.kind != INCONCLUSIVE:
                self._say(f"SLO at {self.weight} %: {verdict.reason}")
                return

            if self.clock() - waited_since >= self.patience:
                self._stop(
                    f"the SLO could not be judged before {weight} % within "
                    f"{self.patience:g} s: {verdict.reason}"
                )
            self._set_state(WAITING, f"before {weight} %: waiting for traffic "
                                     f"to judge ({verdict.reason})")
            self.sleep(self.check_every)

    def _move(self, index: int, weight: int) -> None:
        self._check_still_ours(self.weight)
        why = f"rollout step {index + 1}/{len(self.steps)}"
        if self.reason:
            why += f": {self.reason}"
        self.store.set_weight(self.context, weight, self.actor, why)
        self.weight = weight
        self._set_state(RUNNING, f"at {weight} %", step=index)
        self._say(f"step {index + 1}/{len(self.steps)}: {weight} % of reads to "
                  "the service")

    def _dwell(self, weight: int) -> None:
        remaining = self.every
        last = self.clock()
        self._say(f"at {weight} %: next step in {remaining:g} s")
        told = remaining
        paused = False
        while remaining > 0:
            self.sleep(min(self.check_every, remaining))
            now = self.clock()
            rollout = self._check_still_ours(weight)
            if rollout.state == PAUSED:
                if not paused:
                    self._say(f"paused at {weight} %: {rollout.reason}")
            else:
                if paused:
                    self._say(f"resumed at {weight} %: next step in {remaining:g} s")
                remaining -= now - last
            paused = rollout.state == PAUSED
            last = now
            if told - remaining >= _TOLD_EVERY and remaining > 0:
                self._say(f"at {weight} %: next step in {remaining:.0f} s")
                told = remaining

    def _wait_while_paused(self, weight: int) -> None:
        while self._check_still_ours(weight).state == PAUSED:
            self.sleep(self.check_every)

    def _check_still_ours(self, weight: int) -> Rollout:
        """The rollout as the store has it; ends the walk if someone else
        ended it or moved the weight."""
        rollout = self.store.rollout(self.context)
        assert rollout is not None
        if rollout.state in (ROLLED_BACK, STOPPED):
            current = self.store.status()[self.context].read_weight
            self.weight = current
            raise _Ended(f"{rollout.state}: {rollout.reason}")

        current = self.store.status()[self.context].read_weight
        if current != weight:
            last = next(
                (e for e in reversed(self.store.history(self.context))
                 if e.what == "read_weight"),
                None,
            )
            by = f" by {last.actor} ({last.reason})" if last else ""
            self.weight = current
            self._end(STOPPED, f"the weight was changed to {current} %{by}")
        return rollout

    def _set_state(self, state: str, reason: str, step: int | None = None) -> None:
        updated = self.store.update_rollout(self.context, state=state, reason=reason,
                                            step=step)
        if updated is None:
            self._check_still_ours(self.weight)

    def _stop(self, reason: str) -> None:
        self._end(STOPPED, reason)

    def _end(self, state: str, reason: str) -> None:
        self.store.update_rollout(self.context, state=state, reason=reason)
        self._say(f"stopped: {reason}")
        raise _Ended(reason)

    def _say(self, line: str) -> None:
        self.events.append(line)
        log.info("%s", line)
        if self.progress is not None:
            self.progress(line)

    def _report(self, finished: bool, reason: str) -> RolloutReport:
        return RolloutReport(self.context, self.steps, self.weight, finished, reason,
                             tuple(self.events))


def pause_rollout(
    store: StateStore, context: str, reason: str = "", actor: str = "migrate rollout"
) -> bool:
    """Stop the rollout's clock; True if there was a running one."""
    return store.update_rollout(
        context, state=PAUSED, reason=reason or "paused", only_if=(RUNNING, WAITING),
        actor=actor,
    ) is not None


def resume_rollout(
    store: StateStore, context: str, reason: str = "", actor: str = "migrate rollout"
) -> bool:
    """Start a paused rollout's clock again; True if it was paused."""
    return store.update_rollout(
        context, state=RUNNING, reason=reason or "resumed", only_if=(PAUSED,),
        actor=actor,
    ) is not None


def stop_rollout(
    store: StateStore, context: str, reason: str = "", actor: str = "migrate rollout"
) -> bool:
    """End the rollout where it is; True if one was active."""
    return store.update_rollout(
        context, state=STOPPED, reason=reason or "stopped by the operator",
        actor=actor,
    ) is not None


def shadow_gate(client: object, limit: float = 0.01) -> Gate:
    """A gate that refuses while the share of shadowed requests that
    differed (or got no answer from the other side) is above `limit`.

    The first time it is asked it judges every request the router has
    shadowed since it started; each later time, those shadowed since it
    was last asked, so a step is judged on its own traffic. No shadowed
    request is no refusal: shadowing may be off."""
    judged: dict[str, int] = {}

    def shadow_differences(context: str) -> str | None:
        totals = client.shadow(context)["totals"]  # type: ignore[attr-defined]
        seen = {k: totals[k] for k in ("same", "different", "ignored",
                                       "candidate_error")}
        fresh = {k: seen[k] - judged.get(k, 0) for k in seen}
        if any(n < 0 for n in fresh.values()):
            # The router restarted: its counts began again.
            fresh = seen
        since = " since the last step" if judged else ""
        judged.update(seen)
        compared = sum(fresh.values())
        if compared <= 0:
            return None

        bad = fresh["different"] + fresh["candidate_error"]
        if bad / compared <= limit:
            return None

        return (
            f"{bad} of {compared} shadowed requests{since} differed or failed "
            f"({bad / compared:.1%}, limit {limit:.1%})"
        )

    return shadow_differences


def _interruption(error: BaseException) -> str:
    if isinstance(error, Interrupted):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted by SIGINT"
    return f"interrupted: {type(error).__name__}: {error}"


def _steps(steps: Sequence[int]) -> str:
    return " -> ".join(f"{w} %" for w in steps)
