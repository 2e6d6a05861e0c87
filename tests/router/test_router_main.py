"""`python -m migrate.router` as its own process, as operators run it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from migrate.router.state import StateStore

REPOSITORY = Path(__file__).resolve().parents[2]


def _start(state: StateStore, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "migrate.router", "--state", state.path,
         "--host", "127.0.0.1", *options],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def router_process(store: StateStore) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = _start(store, "--port", "0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("router listening on http://127.0.0.1:"), line
        yield process, line.split()[-1]
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_a_weight_change_reaches_the_router_process_without_restart(
    store: StateStore, router_process: tuple[subprocess.Popen[str], str]
) -> None:
    _, url = router_process
    before = requests.get(url + "/invoices/42", timeout=10)

    store.set_weight("billing", 100, "test", "all reads")

    deadline = time.monotonic() + 5
    answered_by = before.headers["X-Migrate-Backend"]
    while answered_by != "billing" and time.monotonic() < deadline:
        time.sleep(0.05)
        answered_by = requests.get(url + "/invoices/42", timeout=10).headers[
            "X-Migrate-Backend"
        ]
    assert before.headers["X-Migrate-Backend"] == "monolith"
    assert answered_by == "billing"


def test_the_router_process_stops_cleanly_on_sigterm(
    router_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = router_process
    assert requests.get(url + "/_router/health", timeout=10).status_code == 200

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=10) == 0


def test_a_port_in_use_exits_non_zero_naming_the_problem(store: StateStore) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = _start(store, "--port", str(taken.getsockname()[1]))
        _, errors = process.communicate(timeout=30)

    assert process.returncode == 1
    assert "router: cannot start" in errors
    assert "address already in use" in errors.lower()


def test_quiet_leaves_the_ready_line_to_the_json_log(store: StateStore) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = _start(store, "--port", str(port), "--quiet")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/_router/health", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        printed, logged = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    assert printed == ""
    lines = [json.loads(line) for line in logged.splitlines()]
    assert f"router listening on http://127.0.0.1:{port}" in [
        line["message"] for line in lines]
