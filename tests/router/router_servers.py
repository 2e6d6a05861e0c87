"""Real sockets for the router's tests: echo backends and a running router.

Each backend is a small aiohttp server on its own thread and event loop,
bound to port 0, that answers with who it is and what it received. The
router runs the same way, in-process, on its own server stack.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

import requests
from aiohttp import web

from migrate.router.proxy import RunningRouter as ProxyServer
from migrate.router.proxy import Settings
from migrate.router.state import StateStore

BILLING_ROUTES = [
    ("GET", "/invoices/<int:invoice_id>", "invoice_id"),
    ("GET", "/customers/<customer_id>/invoices", "customer_id"),
    ("POST", "/invoices/<int:invoice_id>/payments", "invoice_id"),
]


class ServerThread:
    """An aiohttp application served on 127.0.0.1:0 from its own thread."""

    def __init__(self, app: web.Application):
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.port = 0

    def start(self, port: int = 0) -> ServerThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(port), self._loop).result(10)
        return self

    async def _start(self, port: int) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(
            self._runner.cleanup(), self._loop
        ).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class EchoBackend:
    """A backend that says who it is and echoes what reached it.

    `status` makes every answer that status; `delay` holds every answer
    that many seconds; `refuse_writes` answers writes
    503 with X-Migrate-Not-Writer, as a fenced host does; `on_write` runs
    in the backend's thread when a write arrives; `reply`, when set, makes
    the answer from what was seen: (status, JSON body) or (status, body,
    headers). `fail_next` answers that many next requests 503.
    """

    def __init__(self, name: str):
        self.name = name
        self.status = 200
        self.delay = 0.0
        self.refuse_writes = False
        self.on_write: Callable[[], object] | None = None
        self.reply: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None
        self.fail_next = 0
        self.extra_headers: dict[str, str] = {}
        self.received: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_route("*", "/big/{size}", self._big)
        app.router.add_route("*", "/fixed/{size}", self._fixed)
        app.router.add_route("*", "/status/{code}", self._status)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        self.server = ServerThread(app)

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = {
            "backend": self.name,
            "method": request.method,
            "path": request.path,
            "target": request.raw_path,
            "headers": {k: v for k, v in request.headers.items()},
            "body": body.decode(),
        }
        self.received.append(seen)
        if self.delay:
            await asyncio.sleep(self.delay)
        writes = request.method not in ("GET", "HEAD", "OPTIONS")
        if writes and self.on_write is not None:
            self.on_write()
        if writes and self.refuse_writes:
            return web.json_response(
                {"error": "context_not_writer"},
                status=503,
                headers={"X-Migrate-Not-Writer": "billing", "Retry-After": "1"},
            )

        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": "unavailable"}, status=503)

        if self.reply is not None:
            status, body, *rest = self.reply(seen)
            headers = {**self.extra_headers, **(rest[0] if rest else {})}
            if isinstance(body, bytes):
                return web.Response(status=status, body=body, headers=headers)
            return web.json_response(body, status=status, headers=headers)

        return web.json_response(
            seen, status=self.status, headers=self.extra_headers
        )

    async def _big(self, request: web.Request) -> web.StreamResponse:
        size = int(request.match_info["size"])
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for offset in range(0, size, 10_000):
            await response.write(_pattern(offset, min(10_000, size - offset)))
        await response.write_eof()
        return response

    async def _status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]),
                            headers={"ETag": '"v1"'})

    async def _fixed(self, request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.match_info["size"]))

    @property
    def url(self) -> str:
        return self.server.url


def _pattern(offset: int, length: int) -> bytes:
    return bytes((offset + i) % 251 for i in range(length))


def expected_big_body(size: int) -> bytes:
    return _pattern(0, size)


class LoopThread:
    """An event loop on its own thread, for servers that are not aiohttp's."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.call(_cancel_the_rest(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _cancel_the_rest() -> None:
    """Cancel what still runs on the loop, a request in flight say, as
    asyncio.run does before it closes its loop: nothing is left to be
    destroyed pending with it."""
    this = asyncio.current_task()
    rest = [task for task in asyncio.all_tasks() if task is not this]
    for task in rest:
        task.cancel()
    if rest:
        await asyncio.wait(rest, timeout=5)


class RawBackend:
    """A backend on asyncio streams that answers every request 200 `ok`,
    and misbehaves as real ones do when told to.

    After `stall()` it takes requests and never answers, as a process
    stopped with SIGSTOP does (its kernel still accepts connections). With
    `one_per_connection` it closes a connection, without a word, on the
    second request sent on it: a backend that dropped a kept-alive
    connection just as the router sent on it.
    """

    def __init__(self, one_per_connection: bool = False):
        self.one_per_connection = one_per_connection
        self.connections = 0
        self.requests = 0
        self._stalled = threading.Event()
        self._thread = LoopThread()
        self._server = self._thread.call(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    def stall(self) -> None:
        self._stalled.set()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                if self._stalled.is_set():
                    await reader.read()
                    return
                if self.one_per_connection and answered:
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.close()
        self._thread.stop()


class RunningRouter:
    """The kit's router on its own thread and event loop, on port 0."""

    def __init__(self, store: StateStore, settings: Settings):
        self.thread = LoopThread()
        self.running = self.thread.call(ProxyServer.start(store, settings))
        self.router = self.running.router
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.running.port}"

    @property
    def port(self) -> int:
        return int(self.running.port)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=30, **kwargs)

    def backend_of(self, path: str) -> str:
        return self.get(path).headers["X-Migrate-Backend"]

    def on_loop(self, coroutine: Any) -> Any:
        return self.thread.call(coroutine)

    def stop(self) -> None:
        self.session.close()
        try:
            self.thread.call(self.running.stop())
        finally:
            self.thread.stop()


def echoed(response: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.content)
    return body


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes to 127.0.0.1:port and read until the server closes
    the connection or stays quiet for `timeout` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                return received
            if not chunk:
                return received
            received += chunk


def statuses(raw: bytes) -> list[int]:
    """The status codes of the HTTP/1.1 answers in a raw byte stream."""
    import re

    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", raw)]


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


class Process:
    """A server in a process of its own that prints `... http://HOST:PORT`
    when it is ready; `url` is that address."""

    def __init__(self, command: list[str]):
        import subprocess

        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        found = [word for word in line.split() if word.startswith("http://")]
        if not found:
            self.stop()
            raise RuntimeError(f"{' '.join(command)} did not start: {line!r}")
        self.url = found[0]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


def canned_backend() -> Process:
    """A fast backend answering every request with the same small JSON."""
    import sys

    return Process([sys.executable, "-m", "migrate.router.bench", "--serve-backend"])


def router_process(state: StateStore) -> Process:
    """The kit's router as `python -m migrate.router` serves it."""
    import sys

    return Process([sys.executable, "-m", "migrate.router", "--state", state.path,
                    "--port", "0", "--no-admin", "--log-level", "WARNING"])


def backends_of(port: int, requests: list[bytes], batch: int = 64) -> list[str]:
    """Send requests on one keep-alive connection, pipelined `batch` at a
    time; the X-Migrate-Backend of each answer, in order."""
    import httptools

    found: list[str] = []

    class Answers:
        def __init__(self) -> None:
            self.backend = ""
            self.done = 0

        def on_header(self, name: bytes, value: bytes) -> None:
            if name.lower() == b"x-migrate-backend":
                self.backend = value.decode()

        def on_message_complete(self) -> None:
            found.append(self.backend)
            self.backend = ""
            self.done += 1

    answers = Answers()
    parser = httptools.HttpResponseParser(answers)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for start in range(0, len(requests), batch):
            chunk = requests[start:start + batch]
            sock.sendall(b"".join(chunk))
            wanted = start + len(chunk)
            while answers.done < wanted:
                data = sock.recv(1 << 16)
                if not data:
                    raise ConnectionError(f"closed after {answers.done} answers")
                parser.feed_data(data)
    return found
