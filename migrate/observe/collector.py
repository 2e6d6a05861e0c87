"""A local stand-in for the X-Ray daemon: it receives segments and keeps them.

Every process sends its segment documents over UDP to
`AWS_XRAY_DAEMON_ADDRESS` (default 127.0.0.1:2000), as the X-Ray SDK does:
each datagram is the line `{"format": "json", "version": 1}`, a newline,
then one document: a segment, or a subsegment sent on its own (with
`"type": "subsegment"`, its `parent_id` and `trace_id`). The collector
stores each document in a SQLite file (`traces.db` in the system's
folder), keyed by trace and id, so a document sent again (an in-progress
segment, then the finished one) replaces the first. `migrate traces` reads
that file.

It keeps the newest `--keep` documents (default 200,000) and forgets older
ones. A datagram that is not a document is counted and dropped. What it does
not do: forward anything to AWS.

    python -m migrate.observe.collector --listen 127.0.0.1:2000 \\
        --store var/traces.db [--http-port N]

With `--http-port`, `GET /health` answers on loopback with the counts, for
readiness checks, and `GET /metrics` with the same counts for Prometheus.
"""

from __future__ import annotations

import argparse
import http.server
import json
import logging
import signal
import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from migrate.observe import metrics, setup_process

_log = logging.getLogger(__name__)

PROTOCOL_HEADER = {"format": "json", "version": 1}
KEEP = 200_000
_PRUNE_EVERY = 1_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    trace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    parent_id TEXT,
    name TEXT NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL,
    received REAL NOT NULL,
    sequence INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (trace_id, id)
);
CREATE INDEX IF NOT EXISTS documents_by_sequence ON documents (sequence);
CREATE INDEX IF NOT EXISTS documents_by_start ON documents (start_time);
"""


def open_store(path: str | Path) -> sqlite3.Connection:
    """The store, created if missing; WAL, so readers never wait."""
    connection = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                 check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(SCHEMA)
    return connection


def parse_datagram(data: bytes) -> dict[str, Any]:
    """The document a datagram carries; ValueError when it carries none."""
    header, newline, body = data.partition(b"\n")
    if not newline or json.loads(header) != PROTOCOL_HEADER:
        raise ValueError("a datagram starts with the X-Ray protocol header line")

    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("a segment document is a JSON object")

    for field in ("trace_id", "id", "name", "start_time"):
        if field not in document:
            raise ValueError(f"a segment document has a {field!r}")
    return document


class Collector:
    """Receives datagrams on a UDP socket and stores their documents."""

    def __init__(self, store: sqlite3.Connection, keep: int = KEEP):
        self.store = store
        self.keep = keep
        self.received = 0
        self.dropped = 0
        row = store.execute("SELECT max(sequence) FROM documents").fetchone()
        self._sequence = int(row[0] or 0)
        self._lock = threading.Lock()

    def take(self, data: bytes) -> bool:
        """Store one datagram's document; False when it was not one."""
        try:
            document = parse_datagram(data)
        except (ValueError, UnicodeDecodeError):
            self.dropped += 1
            return False

        with self._lock:
            self._sequence += 1
            self.store.execute(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    document["trace_id"],
                    document["id"],
                    document.get("parent_id"),
                    document["name"],
                    float(document["start_time"]),
                    document.get("end_time"),
                    time.time(),
                    self._sequence,
                    json.dumps(document, separators=(",", ":")),
                ),
            )
            self.received += 1
            if self._sequence % _PRUNE_EVERY == 0:
                self.store.execute(
                    "DELETE FROM documents WHERE sequence <= ?",
                    (self._sequence - self.keep,),
                )
        return True

    def serve(self, sock: socket.socket, stop: threading.Event) -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            self.take(data)


def _counts(collector: Collector) -> Any:
    received = metrics.family("migrate_collector_documents_total")
    received.add_metric([], collector.received)
    dropped = metrics.family("migrate_collector_dropped_total")
    dropped.add_metric([], collector.dropped)
    yield from (received, dropped)


def _health_server(collector: Collector, port: int) -> http.server.HTTPServer:
    counts = metrics.registry_of(metrics.Reading(lambda: _counts(collector)))
    metrics.emit_also(counts)

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if self.path == "/metrics":
                body, kind = metrics.exposition(counts), metrics.CONTENT_TYPE
            elif self.path == "/health":
                body = json.dumps(
                    {"status": "ok", "received": collector.received,
                     "dropped": collector.dropped}
                ).encode()
                kind = "application/json"
            else:
                self.send_error(404)
                return

            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give the address as HOST:PORT")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m migrate.observe.collector",
        description="Receive X-Ray segments over UDP and keep them in SQLite.",
    )
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 2000),
                        help="UDP HOST:PORT to listen on (default 127.0.0.1:2000)")
    parser.add_argument("--store", type=Path, required=True,
                        help="the SQLite file to keep documents in")
    parser.add_argument("--http-port", type=int,
                        help="answer GET /health on this loopback port")
    parser.add_argument("--keep", type=int, default=KEEP,
                        help=f"documents kept, newest first (default {KEEP:,})")
    arguments = parser.parse_args(argv)
    setup_process("collector")

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(arguments.listen)
    except OSError as error:
        host, port = arguments.listen
        print(f"collector: cannot listen on udp://{host}:{port}: {error}",
              file=sys.stderr)
        return 1

    arguments.store.parent.mkdir(parents=True, exist_ok=True)
    collector = Collector(open_store(arguments.store), arguments.keep)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if arguments.http_port:
        health = _health_server(collector, arguments.http_port)
        threading.Thread(target=health.serve_forever, daemon=True).start()
    host, port = sock.getsockname()
    _log.info("collector listening on udp://%s:%s, keeping documents in %s",
              host, port, arguments.store)
    collector.serve(sock, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
