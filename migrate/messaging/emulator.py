"""moto's SNS/SQS server as a child process on loopback, for laptops and tests.

`Emulator` starts moto's server (`moto.server.main`, what `python -m
moto.server` runs) on a given port or on a free one, waits until it answers
HTTP, and stops it (SIGTERM, then SIGKILL after a grace period). Its output
goes to a log file in a temporary directory, whose tail is quoted when the
server fails to start.

What it does not do: keep anything. moto holds queues, topics and messages in
memory only, so a restart forgets them all; call `topology.ensure` again after
`restart()`. Deep queues are slow in moto (every call scans the queue), so
keep test queues shallow.

On Linux the server also ends when the process (strictly, the thread) that
started it dies, even if `stop()` never ran: start it from a thread that
lives as long as you need the server.

In tests:

    @pytest.fixture(scope="session")
    def emulator():
        with Emulator() as running:
            yield running
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from migrate.messaging.errors import EmulatorFailed

_log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# A port picked by `free_port` can be taken by another process before moto
# binds it; a few attempts make that race harmless.
_ATTEMPTS_ON_PICKED_PORT = 3


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


# Runs moto's own entry point (what `python -m moto.server` runs), after
# asking Linux for SIGTERM when the parent dies; a parent gone before that
# request took effect is caught by comparing the parent's pid.
_BOOTSTRAP = """
import ctypes, os, signal, sys
parent = int(sys.argv.pop(1))
if sys.platform.startswith("linux"):
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
if os.getppid() != parent:
    sys.exit("emulator: parent gone before start-up")
from moto.server import main
main(sys.argv[1:])
"""


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server itself binds: a port left in TIME_WAIT by a previous
        # server is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False

    return True


class Emulator:
    """One moto server process; a context manager that starts and stops it."""

    def __init__(
        self,
        port: int | None = None,
        host: str = LOOPBACK,
        *,
        startup_timeout: float = 30.0,
        python: str = sys.executable,
    ):
        self.host = host
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self._port = port
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir: Path | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmulatorFailed(self._url_for("?"), "has no port until started")

        return self._port

    @property
    def endpoint_url(self) -> str:
        return self._url_for(self.port)

    @property
    def log_path(self) -> Path | None:
        return self._log_dir / "moto.log" if self._log_dir else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        if self.running:
            return self

        self._log_dir = Path(tempfile.mkdtemp(prefix="moto-"))
        attempts = 1 if self._requested_port else _ATTEMPTS_ON_PICKED_PORT
        for attempt in range(1, attempts + 1):
            self._port = self._requested_port or free_port(self.host)
            try:
                self._spawn_and_wait()
            except EmulatorFailed as failure:
                self._terminate()
                if attempt == attempts:
                    self._remove_log()
                    raise

                _log.warning("retrying the emulator on another port: %s", failure)
            else:
                _log.info("emulator answers at %s", self.endpoint_url)
                return self

        raise AssertionError("unreachable: the last attempt raises or returns")

    def stop(self, timeout: float = 10.0) -> None:
        self._terminate(timeout)
        self._remove_log()

    def restart(self) -> None:
        """Stop and start on the same port; everything moto held is gone."""
        port = self._port
        self.stop()
        self._requested_port = self._requested_port or port
        self.start()

    def reset(self) -> None:
        """Forget every resource without restarting (moto's reset API)."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset", method="POST", data=b""
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _url_for(self, port: int | str) -> str:
        return f"http://{self.host}:{port}"

    def _spawn_and_wait(self) -> None:
        assert self.log_path is not None
        if not _bindable(self.host, self.port):
            # Without this check another server on the port would answer the
            # readiness probe, and this emulator would seem to have started.
            raise EmulatorFailed(self.endpoint_url, "cannot bind: the port is taken")

        command = [
            self._python, "-c", _BOOTSTRAP, str(os.getpid()),
            "-H", self.host, "-p", str(self.port),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: a Ctrl-C meant for the parent reaches
                # the parent, which then stops the server in order.
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._wait_until_answering()

    def _wait_until_answering(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmulatorFailed(
                    self.endpoint_url,
                    f"exited with code {self._process.returncode} while starting",
                    self._log_tail(),
                )

            if self._answers():
                return

            time.sleep(0.05)
        raise EmulatorFailed(
            self.endpoint_url,
            f"did not answer within {self.startup_timeout:g} s",
            self._log_tail(),
        )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/", timeout=1):
                return True
        except urllib.error.HTTPError:
            # Any HTTP status means a server is there.
            return True
        except OSError:
            return False

    def _terminate(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return

        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _log.warning("emulator pid %s ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait()

    def _log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""

        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _remove_log(self) -> None:
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None
