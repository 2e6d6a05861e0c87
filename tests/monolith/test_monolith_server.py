"""`python -m monolith` serves as many connections as a router keeps open."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import requests

from migrate.messaging.emulator import free_port
from migrate.processes import ProcessSpec, Supervisor
from migrate.schema import upgrade

# More than waitress serves by default (100), as a router's pool reaches
# when the monolith slows down under a burst of reads.
HELD = 150


def test_a_new_connection_is_answered_while_many_are_held_open(
    sqlite_url: str, tmp_path: Path
) -> None:
    upgrade(sqlite_url)
    supervisor = Supervisor(tmp_path / "run", tmp_path / "logs")
    port = free_port()
    held: list[socket.socket] = []
    try:
        supervisor.start(ProcessSpec(
            "monolith", [sys.executable, "-m", "monolith", "--database", sqlite_url,
                         "--port", str(port)],
            ready_url=f"http://127.0.0.1:{port}/_migrate/health"))
        for _ in range(HELD):
            connection = socket.create_connection(("127.0.0.1", port), timeout=5)
            connection.sendall(b"GET /_migrate/health HTTP/1.1\r\n"
                               b"Host: monolith\r\n\r\n")
            assert connection.recv(65536).startswith(b"HTTP/1.1 200")
            held.append(connection)

        answer = requests.get(f"http://127.0.0.1:{port}/_migrate/health", timeout=5)
    finally:
        for connection in held:
            connection.close()
        supervisor.stop_all(["monolith"])

    assert answer.status_code == 200
