"""Real sockets for the routing tests: named backends, the kit's router, and
nginx on a generated configuration. Everything binds to loopback port 0 or
to a port found free, and everything started here has a `stop`."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from aiohttp import web

from migrate.router.proxy import create_app
from migrate.router.state import StateStore


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()),
        None,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Backend:
    """Answers every request with its name; `status` sets the answer's code.
    `seen` lists (method, path) of what reached it."""

    def __init__(self, name: str):
        self.name = name
        self.status = 200
        self.seen: list[tuple[str, str]] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in separate writes; without this each
            # kept-alive answer waits on a delayed ACK.
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                backend.seen.append((self.command, self.path))
                body = json.dumps({"backend": backend.name}).encode()
                self.send_response(backend.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class Router:
    """The kit's router on its own thread and event loop."""

    def __init__(self, store: StateStore):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = web.AppRunner(
            create_app(store), access_log=None, handle_signals=False
        )
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(
            10
        )

    async def _start(self) -> int:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class Nginx:
    """nginx in the foreground on a configuration in its own prefix."""

    def __init__(self, binary: str, prefix: Path, configuration: str, port: int):
        self.binary = binary
        self.prefix = prefix
        self.port = port
        prefix.mkdir(parents=True, exist_ok=True)
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(configuration)
        self.process: subprocess.Popen[bytes] | None = None

    def test(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-t", "-p", str(self.prefix), "-c", str(self.conf),
             "-e", "stderr"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    def start(self) -> Nginx:
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.prefix), "-c", str(self.conf),
             "-e", "stderr", "-g", "daemon off;"],
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read() if self.process.stderr else b""
                raise RuntimeError(f"nginx exited: {error.decode()}")

            try:
                requests.get(f"{self.url}/_router/health", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not answer within 15 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is None:
            return

        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self.process.stderr:
            self.process.stderr.close()
