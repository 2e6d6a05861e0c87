"""The strangler-fig router: one HTTP front door for the monolith and services.

Every request goes to exactly one backend, chosen from a routing table held
in memory:

- a request that matches no registered route goes to the monolith;
- a read (GET, HEAD, OPTIONS) of a route goes to the context's service when
  its bucket key falls on the service side of the read weight (see
  `buckets`), else to the monolith. Weight 0 is always the monolith and 100
  always the service; between the two, a route without a bucket key stays on
  the monolith, because only a key keeps a client's reads on one side;
- a write goes to the context's writer. While the context's writes are held
  (a writer flip in progress) it waits, up to the hold timeout (30 s), for
  the hold to lift, then goes to whoever writes by then; still held, it gets
  503 `writes_held`. A writer that answers 503 with `X-Migrate-Not-Writer`
  refused before changing anything, so the write is sent again to the
  current writer, with a growing pause, until the hold timeout.

A read the service cannot answer (refused connection, timeout, 5xx) is sent
to the monolith instead. A write is never sent twice, except after a
not-the-writer refusal: nobody knows whether a failed write took effect.

The table is read from the state store at start, and a background task
polls the store's revision every 200 ms; a new revision is loaded off the
event loop and swapped in with one assignment. A request reads the table
once, so it never sees half of a change; no request touches SQLite.

Proxying keeps the client's Host and body, drops hop-by-hop headers (and any
header named in Connection) both ways, appends the client's address to
X-Forwarded-For, sets X-Forwarded-Proto and X-Forwarded-Host, and adds
`X-Migrate-Backend` naming who answered (`router` for the router's own
answers). Request bodies are read up to 10 MiB (413 past it) so a write can
be sent again; response bodies are relayed as they arrive. Upstream
connections are pooled and kept alive; connecting and each read time out
after 10 s. Not supported: WebSocket upgrades, HTTP/2, trailers.

`GET /_router/health` and `GET /_router/stats` are answered by the router.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from migrate.router.buckets import goes_to_service
from migrate.router.state import MONOLITH, ContextState, RoutingTable, StateStore
from migrate.router.table import READ_METHODS, Route

log = logging.getLogger(__name__)

MiB = 1024 * 1024
BACKEND_HEADER = "X-Migrate-Backend"
NOT_WRITER_HEADER = "X-Migrate-Not-Writer"
ROUTER = "router"
UNMATCHED = "(unmatched)"

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        # Recomputed from the body actually sent.
        "content-length",
    }
)
# The router has read the whole body already; asking the backend whether to
# send it would only cost a round trip.
_NOT_FORWARDED = _HOP_BY_HOP | {"expect", "x-forwarded-proto", "x-forwarded-host"}
# Headers aiohttp's client would add on its own; a proxy adds none.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
# Bodies up to this size are relayed whole, larger ones chunk by chunk.
_WHOLE_BODY = 256 * 1024
_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Settings:
    """The router's knobs; times in seconds, sizes in bytes."""

    hold_timeout: float = 30.0
    upstream_timeout: float = 10.0
    max_body: int = 10 * MiB
    poll_interval: float = 0.2
    hold_poll: float = 0.05
    connections: int = 512


class Stats:
    """Counters since start; plain dicts, cheap on the hot path."""

    def __init__(self) -> None:
        self.requests: dict[str, dict[str, int]] = {}
        self.errors: dict[str, int] = {}
        self.fallbacks: dict[str, int] = {}
        self.held_writes: dict[str, int] = {}
        self.not_writer_retries: dict[str, int] = {}
        self.refused: dict[str, int] = {}

    def answered(self, context: str, backend: str) -> None:
        per_backend = self.requests.setdefault(context, {})
        per_backend[backend] = per_backend.get(backend, 0) + 1

    @staticmethod
    def bump(counter: dict[str, int], name: str) -> None:
        counter[name] = counter.get(name, 0) + 1

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "held_writes": self.held_writes,
            "not_writer_retries": self.not_writer_retries,
            "refused": self.refused,
        }


class _Refused(Exception):
    """A request the router answers itself, with a status and error code."""

    def __init__(self, status: int, code: str, message: str, **details: Any):
        super().__init__(message)
        self.status = status
        self.body = {"error": code, "message": message, **details}


class _Unreachable(Exception):
    """A backend gave no answer: refused, reset, or timed out."""

    def __init__(self, backend: str, error: BaseException):
        super().__init__(f"{backend}: {error!r}")
        self.backend = backend
        self.timed_out = isinstance(error, TimeoutError)


class Router:
    """Routes requests by the current table; one instance per process."""

    def __init__(self, store: StateStore, settings: Settings | None = None):
        self.store = store
        self.settings = settings or Settings()
        self.stats = Stats()
        self.table: RoutingTable | None = None
        self._session: aiohttp.ClientSession | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._refreshing = asyncio.Lock()
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.settings.upstream_timeout,
            sock_read=self.settings.upstream_timeout,
        )

    # Lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        self.table = await asyncio.to_thread(self.store.snapshot)
        log.info("routing table at revision %s", self.table.revision)
        connector = aiohttp.TCPConnector(
            limit=self.settings.connections, keepalive_timeout=30
        )
        # Bodies pass through as the backend encoded them.
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._watcher = asyncio.create_task(self._watch(), name="router-watch")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)

        if self._session is not None:
            await self._session.close()

    async def _watch(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                await self.refresh()
            except Exception:
                # A store briefly unreadable must not stop routing: the last
                # table keeps serving until a read succeeds. Said once, not
                # five times a second.
                if not failing:
                    log.exception(
                        "cannot read the state store %s; routing by revision %s",
                        self.store.path, self._current().revision,
                    )
                failing = True
            else:
                if failing:
                    log.info("state store %s readable again", self.store.path)
                failing = False

    async def refresh(self) -> None:
        """Load the table again if the store's revision moved."""
        async with self._refreshing:
            current = self._current()
            revision = await asyncio.to_thread(self.store.revision)
            if revision == current.revision:
                return

            table = await asyncio.to_thread(self.store.snapshot)
            log.info(
                "routing table at revision %s (was %s): %s",
                table.revision, current.revision, describe_change(current, table),
            )
            self.table = table

    def _current(self) -> RoutingTable:
        if self.table is None:
            raise RuntimeError("the router has not started")

        return self.table

    # Requests ----------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        table = self._current()
        try:
            body = await self._body(request)
            found = table.match(request.method, request.path)
            if found is None:
                return await self._forward(request, body, table, UNMATCHED, MONOLITH)

            route, params = found
            if request.method in READ_METHODS:
                return await self._read(request, body, table, route, params)

            return await self._write(request, body, route)
        except _Refused as refusal:
            self.stats.bump(self.stats.refused, refusal.body["error"])
            return _own_answer(refusal.status, refusal.body)

    async def _read(
        self,
        request: web.Request,
        body: bytes | None,
        table: RoutingTable,
        route: Route,
        params: Mapping[str, str],
    ) -> web.StreamResponse:
        state = table.contexts.get(route.context)
        if state is None or not self._to_service(state, route, params):
            return await self._forward(request, body, table, route.context, MONOLITH)

        try:
            upstream = await self._send(request, body, table, state.service)
        except (_Unreachable, _Refused) as failure:
            log.warning("read from %s failed, monolith answers: %s",
                        state.service, failure)
        else:
            if upstream.status < 500:
                return await self._relay(request, upstream, route.context,
                                         state.service)

            self.stats.bump(self.stats.errors, state.service)
            upstream.release()
            log.warning("read from %s answered %s, monolith answers",
                        state.service, upstream.status)

        self.stats.bump(self.stats.fallbacks, route.context)
        return await self._forward(request, body, table, route.context, MONOLITH)

    @staticmethod
    def _to_service(
        state: ContextState, route: Route, params: Mapping[str, str]
    ) -> bool:
        if state.read_weight >= 100:
            return True

        key = params.get(route.bucket_key) if route.bucket_key else None
        return key is not None and goes_to_service(state.read_weight, state.salt, key)

    async def _write(
        self, request: web.Request, body: bytes | None, route: Route
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.hold_timeout
        pause = self.settings.hold_poll
        while True:
            table, writer = await self._writer_once_released(route, deadline)
            upstream = await self._send_or_refuse(request, body, table, writer)
            refused = upstream.status == 503 and NOT_WRITER_HEADER in upstream.headers
            if not refused or loop.time() >= deadline:
                return await self._relay(request, upstream, route.context, writer)

            # The writer refused before changing anything: safe to send again
            # once the table names the new writer.
            upstream.release()
            self.stats.bump(self.stats.not_writer_retries, route.context)
            await self.refresh()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def _writer_once_released(
        self, route: Route, deadline: float
    ) -> tuple[RoutingTable, str]:
        """The table and the context's writer, once its writes are not held."""
        loop = asyncio.get_running_loop()
        counted = False
        while True:
            table = self._current()
            state = table.contexts.get(route.context)
            if state is None:
                return table, MONOLITH

            if not state.writes_held:
                return table, state.writer

            if not counted:
                self.stats.bump(self.stats.held_writes, route.context)
                counted = True
            if loop.time() >= deadline:
                raise _Refused(
                    503, "writes_held",
                    f"writes to {route.context} are held while its writer "
                    f"changes; still held after {self.settings.hold_timeout} s",
                    context=route.context,
                )

            await asyncio.sleep(self.settings.hold_poll)

    async def _forward(
        self,
        request: web.Request,
        body: bytes | None,
        table: RoutingTable,
        context: str,
        backend: str,
    ) -> web.StreamResponse:
        upstream = await self._send_or_refuse(request, body, table, backend)
        return await self._relay(request, upstream, context, backend)

    async def _send_or_refuse(
        self,
        request: web.Request,
        body: bytes | None,
        table: RoutingTable,
        backend: str,
    ) -> aiohttp.ClientResponse:
        try:
            return await self._send(request, body, table, backend)
        except _Unreachable as failure:
            if failure.timed_out:
                raise _Refused(
                    504, "backend_timeout",
                    f"backend '{backend}' did not answer within "
                    f"{self.settings.upstream_timeout} s",
                    backend=backend,
                ) from None

            raise _Refused(
                502, "backend_unavailable",
                f"backend '{backend}' could not be reached: {failure}",
                backend=backend,
            ) from None

    async def _send(
        self,
        request: web.Request,
        body: bytes | None,
        table: RoutingTable,
        backend: str,
    ) -> aiohttp.ClientResponse:
        base = table.backends.get(backend)
        if base is None:
            raise _Refused(
                502, "no_backend",
                f"backend '{backend}' has no URL in the state store {self.store.path}",
                backend=backend,
            )

        assert self._session is not None
        url = URL(base + request.rel_url.raw_path_qs, encoded=True)
        try:
            return await self._session.request(
                request.method,
                url,
                headers=_upstream_headers(request),
                data=body,
                allow_redirects=False,
                skip_auto_headers=_NO_AUTO_HEADERS,
                timeout=self._timeout,
            )
        except (TimeoutError, aiohttp.ClientError) as error:
            self.stats.bump(self.stats.errors, backend)
            raise _Unreachable(backend, error) from error

    async def _relay(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        context: str,
        backend: str,
    ) -> web.StreamResponse:
        self.stats.answered(context, backend)
        if upstream.status >= 500:
            self.stats.bump(self.stats.errors, backend)
        headers = _downstream_headers(upstream.headers, backend)
        try:
            if request.method == "HEAD" or upstream.status in (204, 304):
                declared = upstream.headers.get("Content-Length")
                if declared is not None:
                    headers["Content-Length"] = declared
                return web.Response(
                    status=upstream.status, reason=upstream.reason, headers=headers
                )

            length = upstream.content_length
            if length is not None and length <= _WHOLE_BODY:
                try:
                    body = await upstream.read()
                except (TimeoutError, aiohttp.ClientError) as error:
                    self.stats.bump(self.stats.errors, backend)
                    return _own_answer(502, {
                        "error": "backend_unavailable",
                        "message": f"backend '{backend}' broke off its answer: "
                                   f"{error!r}",
                        "backend": backend,
                    })

                return web.Response(
                    status=upstream.status,
                    reason=upstream.reason,
                    headers=headers,
                    body=body,
                )

            return await self._stream(request, upstream, headers)
        finally:
            upstream.release()

    async def _stream(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        headers: CIMultiDict[str],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        async for chunk in upstream.content.iter_chunked(_CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _body(self, request: web.Request) -> bytes | None:
        if not request.body_exists:
            return None

        limit = self.settings.max_body
        length = request.content_length
        if length is not None and length > limit:
            raise _too_large(length, limit)

        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
        return b"".join(chunks)

    # The router's own endpoints ----------------------------------------

    async def health(self, request: web.Request) -> web.StreamResponse:
        table = self._current()
        return _own_answer(200, {"status": "ok", "revision": table.revision})

    async def statistics(self, request: web.Request) -> web.StreamResponse:
        table = self._current()
        return _own_answer(200, {"revision": table.revision, **self.stats.as_json()})


_ROUTER_KEY = web.AppKey("router", Router)


def _too_large(size: int, limit: int) -> _Refused:
    return _Refused(
        413, "body_too_large",
        f"request body of {size} bytes or more is over the router's limit "
        f"of {limit} bytes",
        limit=limit,
    )


def _own_answer(status: int, body: Mapping[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers={BACKEND_HEADER: ROUTER},
    )


def _dropped(always: frozenset[str], connection: Iterable[str]) -> frozenset[str]:
    named = {
        name.strip().lower()
        for value in connection
        for name in value.split(",")
        if name.strip()
    }
    return always | named if named else always


def _upstream_headers(request: web.Request) -> list[tuple[str, str]]:
    incoming = request.headers
    dropped = _dropped(_NOT_FORWARDED, incoming.getall("Connection", ()))
    forwarded_for: list[str] = []
    headers: list[tuple[str, str]] = []
    for name, value in incoming.items():
        lowered = name.lower()
        if lowered in dropped or lowered.startswith("proxy-"):
            continue
        if lowered == "x-forwarded-for":
            forwarded_for.append(value)
        else:
            headers.append((name, value))

    forwarded_for.append(request.remote or "unknown")
    headers.append(("X-Forwarded-For", ", ".join(forwarded_for)))
    headers.append(("X-Forwarded-Proto", request.scheme))
    if request.host:
        headers.append(("X-Forwarded-Host", request.host))
    return headers


def _downstream_headers(
    incoming: CIMultiDictProxy[str], backend: str
) -> CIMultiDict[str]:
    dropped = _dropped(_HOP_BY_HOP, incoming.getall("Connection", ()))
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lowered = name.lower()
        if lowered not in dropped and not lowered.startswith("proxy-"):
            headers.add(name, value)
    headers[BACKEND_HEADER] = backend
    return headers


def describe_change(before: RoutingTable, after: RoutingTable) -> str:
    """One line an operator can read: what moved between two tables."""
    changes: list[str] = []
    for name, state in sorted(after.contexts.items()):
        old = before.contexts.get(name)
        if old is None:
            changes.append(
                f"{name} registered (service {state.service}, "
                f"reads {state.read_weight} %, writer {state.writer})"
            )
            continue
        if old.read_weight != state.read_weight:
            changes.append(
                f"{name} reads {old.read_weight} % -> {state.read_weight} %"
            )
        if old.writer != state.writer:
            changes.append(f"{name} writer {old.writer} -> {state.writer}")
        if old.writes_held != state.writes_held:
            changes.append(
                f"{name} writes {'held' if state.writes_held else 'released'}"
            )
        if old.service != state.service:
            changes.append(f"{name} service {old.service} -> {state.service}")
        if old.salt != state.salt:
            changes.append(f"{name} buckets reshuffled (new salt)")
    if before.routes != after.routes:
        changes.append(f"{len(after.routes)} routes")
    if before.backends != after.backends:
        urls = sorted(after.backends.items())
        changes.append("backends " + ", ".join(f"{n}={u}" for n, u in urls))
    return "; ".join(changes) or "no routing change"


def create_app(
    store: StateStore | str | os.PathLike[str], settings: Settings | None = None
) -> web.Application:
    """The router as an aiohttp application, ready for any aiohttp runner."""
    if not isinstance(store, StateStore):
        store = StateStore(store)
    settings = settings or Settings()
    router = Router(store, settings)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await router.start()
        yield
        await router.stop()

    app = web.Application(client_max_size=settings.max_body)
    app[_ROUTER_KEY] = router
    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/_router/health", router.health, allow_head=False)
    app.router.add_get("/_router/stats", router.statistics, allow_head=False)
    app.router.add_route("*", "/{tail:.*}", router.handle)
    return app


def router_of(app: web.Application) -> Router:
    """The `Router` behind an application made by `create_app`."""
    return app[_ROUTER_KEY]


async def serve(
    store: StateStore | str | os.PathLike[str],
    host: str,
    port: int,
    settings: Settings | None = None,
    started: asyncio.Future[tuple[str, int]] | None = None,
) -> None:
    """Run the router until cancelled; `started` gets the bound address."""
    app = create_app(store, settings)
    # Access logs cost more than routing; stats and backends' logs remain.
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        address = runner.addresses[0]
        log.info("router listening on http://%s:%s", address[0], address[1])
        if started is not None:
            started.set_result((address[0], address[1]))
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
