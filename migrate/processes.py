"""The processes of a system running side by side, started and stopped as one.

Each process runs in its own session (process group), with its output in
`<logs>/<name>.log` and its pid in `<run>/<name>.pid`, so `migrate down`
from another shell finds every process `migrate up` started and stops each
whole group: SIGTERM, a grace period, then SIGKILL. Nothing is left behind,
not even a child a process started itself.

Why not supervisord or honcho: we need start-in-order with readiness checks
and a stop that works from a later command; both would add a control plane
(a daemon, or a foreground parent) for what a pid file per group gives.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from migrate.errors import MigrateError

log = logging.getLogger(__name__)


class ProcessFailed(MigrateError):
    def __init__(self, name: str, reason: str, log_tail: str):
        super().__init__(f"{name} {reason}\n--- last lines of its log ---\n{log_tail}")
        self.name = name


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cwd: Path | None = None
    ready_url: str | None = None


class Supervisor:
    def __init__(self, run_dir: Path, logs_dir: Path):
        self.run_dir = run_dir
        self.logs_dir = logs_dir

    def pid_of(self, name: str) -> int | None:
        path = self.run_dir / f"{name}.pid"
        try:
            pid = int(path.read_text())
        except (FileNotFoundError, ValueError):
            return None

        return pid if _alive(pid) else None

    def running(self) -> dict[str, int]:
        if not self.run_dir.exists():
            return {}

        found = {
            p.stem: self.pid_of(p.stem) for p in sorted(self.run_dir.glob("*.pid"))
        }
        return {name: pid for name, pid in found.items() if pid}

    def start(self, spec: ProcessSpec, timeout: float = 60.0) -> int:
        """Start a process unless it runs already; wait until it is ready."""
        running = self.pid_of(spec.name)
        if running:
            return running

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{spec.name}.log"
        with open(log_path, "ab") as output:
            process = subprocess.Popen(
                list(spec.argv),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=spec.cwd,
                env={
                    **os.environ,
                    "PYTHONUNBUFFERED": "1",
                    # Each process names itself so in its logs and traces.
                    "MIGRATE_PROCESS_NAME": spec.name,
                    **spec.env,
                },
                start_new_session=True,
            )
        (self.run_dir / f"{spec.name}.pid").write_text(str(process.pid))
        self._wait_ready(spec, process, log_path, timeout)
        log.info("started %s (pid %s)", spec.name, process.pid)
        return process.pid

    def stop(self, name: str, grace: float = 10.0) -> bool:
        pid = self.pid_of(name)
        (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        if pid is None:
            return False

        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.05)
        if _group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _group_alive(pid):
                time.sleep(0.05)
        return True

    def kill(self, name: str) -> bool:
        """Kill a process at once, as a crash would (for fault drills);
        False when it was not running."""
        pid = self.pid_of(name)
        if not pid:
            return False

        _signal_group(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.02)
        return True

    def stop_all(
        self, first: Sequence[str] = (), last: Sequence[str] = (), grace: float = 10.0
    ) -> list[str]:
        """Stop `first`, then every other process at once, then `last`."""
        running = list(self.running())
        middle = [n for n in running if n not in first and n not in last]
        stopped: list[str] = []
        for group in (
            [n for n in first if n in running],
            middle,
            [n for n in last if n in running],
        ):
            stopped += self._stop_together(group, grace)
        return stopped

    def _stop_together(self, names: list[str], grace: float) -> list[str]:
        pids = {name: self.pid_of(name) for name in names}
        for name, pid in pids.items():
            (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
            if pid:
                _signal_group(pid, signal.SIGTERM)
        alive = [pid for pid in pids.values() if pid]
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_group_alive(p) for p in alive):
            time.sleep(0.05)
        for pid in alive:
            if _group_alive(pid):
                _signal_group(pid, signal.SIGKILL)
                while _group_alive(pid):
                    time.sleep(0.05)
        return [name for name, pid in pids.items() if pid]

    def _wait_ready(
        self,
        spec: ProcessSpec,
        process: subprocess.Popen,
        log_path: Path,
        timeout: float,
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                (self.run_dir / f"{spec.name}.pid").unlink(missing_ok=True)
                raise ProcessFailed(
                    spec.name,
                    f"exited with code {process.returncode} while starting",
                    _tail(log_path),
                )
            if spec.ready_url is None or _answers(spec.ready_url):
                return
            if time.monotonic() > deadline:
                self.stop(spec.name)
                raise ProcessFailed(
                    spec.name,
                    f"was not ready within {timeout:g} s ({spec.ready_url})",
                    _tail(log_path),
                )
            time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (a child of ours that exited) is not alive for our purposes.
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return waited == 0


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return _alive(pid) or _any_in_group(pid)


def _any_in_group(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # Fields after the command: state, ppid, pgrp; zombies do not count.
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
