"""HTTP/1.1 on both sides of the router, on asyncio protocols and llhttp.

The router sits on every request, so its wire layer is kept thin: requests
and answers are parsed by llhttp (through `httptools`) in C, headers stay
bytes, and nothing is copied that is not sent. `serve_http` accepts client
connections and hands each complete request to a handler; `Upstream` keeps
a pool of keep-alive connections to one backend and exchanges one request
at a time on each.

What the client side guarantees:

- llhttp runs strict: a request with both Content-Length and
  Transfer-Encoding, a Content-Length that is not one decimal number, two
  Content-Lengths, a Transfer-Encoding other than one `chunked` (or any
  in HTTP/1.0) or a malformed chunk is answered 400 and the connection
  closed, so no backend ever sees a body framed two ways (request
  smuggling);
- as RFC 9112 asks, an HTTP/1.1 request without a Host header, and any
  request with two, is answered 400; a request line of a version other
  than HTTP/1.1 or 1.0 (HTTP/2.0, HTTP/0.9) is answered 505;
- a request's line and headers are held to `MAX_HEAD` bytes (64 KiB; Envoy
  takes 60 by default) and `MAX_HEADERS` headers (100, as Apache and
  Envoy): past either the router answers 431 and closes, having kept no
  more than that of the head, so a huge header costs it nothing and never
  reaches a backend;
- a request body is read whole, up to the body limit, before the handler
  runs (413 past it, and the connection closed): a write can then be sent
  again, and a shadow copy made, without asking the client twice;
- requests pipelined on one connection are answered in order; at most
  eight wait, after which the router stops reading from that client;
- `Expect: 100-continue` is answered at once when the body fits;
- Upgrade requests (WebSocket) are refused with 501;
- a slow or silent client is cut off (see `ClientTimeouts`): a request's
  head must arrive whole within 10 s of its first byte, and its body at
  1 KiB/s or faster after 10 s of grace, else the router answers 408 and
  closes; a new connection must start its first request within 10 s, and
  a kept-alive one its next within 75 s, else it is closed without a word.
  A connection whose request is being answered is never cut off for it:
  the backend's own timeout applies.

What the backend side guarantees:

- connections are reused while the backend keeps them alive, and dropped
  after `idle_timeout` seconds unused (below the keep-alive timeout of the
  usual servers, so the backend never closes one as the router sends);
- an answer must begin within `timeout` seconds of the exchange starting,
  waiting for a free connection and connecting included, and each later
  read of it come within `timeout` seconds of the one before; a backend
  that stalls costs one timeout, never two;
- a kept-alive connection the backend had closed fails without a byte of
  answer; a request safe to send twice is then sent on a new connection,
  within what is left of the same time. A request that timed out is not
  sent again here: the backend has it, and is only slow;
- an answer with a body over 256 KiB, or of unknown length, is streamed:
  its chunks are passed on as they come, and the backend is paused while
  a slow client has not taken 1 MiB of them.

Not supported: HTTP/2, trailers, WebSocket, answers with 1xx other than
being skipped.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus

import httptools

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]

_PIPELINED = 8
_WHOLE_BODY = 256 * 1024
_HIGH_WATER = 1024 * 1024
_LINGER = 1.0
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_VERSIONS = ("1.1", "1.0")
_WATCHED = frozenset({b"host", b"content-length", b"transfer-encoding", b"expect"})
# llhttp's reasons for a version it does not parse (HTTP/1.2, HTTP/3.0) and
# for HTTP/2's preface (PRI * HTTP/2.0): a version the router does not speak.
_VERSION_ERRORS = frozenset({"Invalid HTTP version", "Pause on PRI/Upgrade"})
# A request's line and headers, in bytes, and its headers, in number: what
# the router keeps of a head before it answers 431 instead.
MAX_HEAD = 64 * 1024
MAX_HEADERS = 100


class Request:
    """One client request, as received; header names as the client wrote them."""

    __slots__ = (
        "method", "target", "path", "headers", "body", "client", "scheme",
        "keep_alive", "version", "_lowered",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        body: bytes | None,
        client: str,
        *,
        scheme: str = "http",
        keep_alive: bool = True,
        version: str = "1.1",
    ):
        self.method = method
        self.target = target
        self.path = path_of(target)
        self.headers = headers
        self.body = body
        self.client = client
        self.scheme = scheme
        self.keep_alive = keep_alive
        self.version = version
        self._lowered: dict[bytes, bytes] | None = None

    def header(self, name: bytes) -> bytes | None:
        """A header's value by its lower-case name (the last one, if repeated)."""
        return self.lowered().get(name)

    def lowered(self) -> dict[bytes, bytes]:
        """Headers by lower-case name (the last value of a repeated one)."""
        lowered = self._lowered
        if lowered is None:
            lowered = self._lowered = {n.lower(): v for n, v in self.headers}
        return lowered

    def remember(self, lowered: dict[bytes, bytes]) -> None:
        """Keep headers already lowered by whoever walked them first."""
        self._lowered = lowered


def path_of(target: bytes) -> str:
    """The percent-decoded path of a request target, as routes match it."""
    path = target.split(b"?", 1)[0]
    if b"%" in path:
        return urllib.parse.unquote_to_bytes(path).decode("utf-8", "replace")

    return path.decode("latin-1")


class Answer:
    """What the router sends back: a status, headers, and a body or a stream.

    `headers` leave out framing (Content-Length, Transfer-Encoding,
    Connection); the writer adds it. `bodiless` answers (to HEAD, 204, 304)
    keep the Content-Length the backend declared in `length`.
    """

    __slots__ = ("status", "reason", "headers", "body", "stream", "length",
                 "bodiless", "backend")

    def __init__(
        self,
        status: int,
        headers: Headers,
        body: bytes | None = b"",
        *,
        reason: bytes | None = None,
        stream: AsyncIterator[bytes] | None = None,
        length: int | None = None,
        bodiless: bool = False,
        backend: str = "",
    ):
        self.status = status
        self.reason = reason if reason is not None else _REASONS.get(status, b"")
        self.headers = headers
        self.body = body
        self.stream = stream
        self.length = length
        self.bodiless = bodiless
        self.backend = backend


Handler = Callable[[Request], Awaitable[Answer]]
# Told of each answer the wire layer makes itself: its status, its error
# code, and the seconds since the request began.
Refused = Callable[[int, str, float], None]


@dataclasses.dataclass(frozen=True)
class ClientTimeouts:
    """How long the router waits for a client; seconds, and bytes a second.

    `keep_alive` is above the 60 s idle timeout of AWS's load balancers, so
    a balancer in front never sends on a connection the router is closing.
    """

    head: float = 10.0
    body_grace: float = 10.0
    body_rate: float = 1024.0
    keep_alive: float = 75.0

    def __post_init__(self) -> None:
        for name in ("head", "body_grace", "body_rate", "keep_alive"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"client timeout {name} is {getattr(self, name)!r}; it is above 0"
                )


class _Refusal:
    """An answer the wire layer writes itself, after which it closes."""

    __slots__ = ("data",)

    def __init__(self, status: int, code: str, message: str):
        body = json.dumps({"error": code, "message": message}).encode()
        self.data = (
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
            b"X-Migrate-Backend: router\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s"
            % (status, _REASONS.get(status, b""), len(body), body)
        )


class _Stop(Exception):
    """Raised inside a parser callback to stop parsing this input."""


# What a client connection is waiting for, as its timer sees it.
_IDLE, _HEAD, _BODY = 0, 1, 2


class _ClientConnection(asyncio.Protocol):
    """One client's connection: parse requests, answer them in order.

    One timer per connection enforces the client timeouts. It is set once
    and, when it fires, looks at what the connection is doing and sets
    itself again for the next deadline, so a request costs two reads of
    the loop's clock and no timer of its own.
    """

    def __init__(self, handler: Handler, max_body: int, scheme: str,
                 timeouts: ClientTimeouts, max_head: int = MAX_HEAD,
                 refused: Refused | None = None):
        self._handler = handler
        self._refused = refused
        self._max_body = max_body
        self._max_head = max_head
        # What the head being read may still take, in bytes.
        self._room = max_head
        self._scheme = scheme
        self._timeouts = timeouts
        self._waiting = _IDLE
        self._since = 0.0
        self._began = 0.0
        self._served = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: collections.deque[Request | _Refusal] = collections.deque()
        self._busy = False
        self._closed = False
        self._stopped = False
        self._paused_reading = False
        self._writable: asyncio.Future[None] | None = None
        self._url = b""
        self._headers: Headers = []
        self._body: list[bytes] = []
        self._size = 0
        self._framed = False
        self._hosts = 0
        self._expect = False
        self._coded = False
        self._version = "1.1"
        self.transport: asyncio.Transport | None = None
        self.client = "unknown"

    # Connection events -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport.
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.client = str(peer[0])
        self._parser = httptools.HttpRequestParser(self)
        loop = self._loop = asyncio.get_running_loop()
        self._since = self._began = loop.time()
        self._timer = loop.call_at(self._since + self._timeouts.head, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiter = self._writable
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self._writable = self._loop.create_future()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        waiter = self._writable
        self._writable = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return

        try:
            if self._waiting == _BODY:
                self._parser.feed_data(data)
                return

            # A head is charged for its bytes before llhttp reads them:
            # httptools holds a header's value until the header ends, so a
            # check in on_header would come after the memory is spent.
            room = self._room - len(data)
            if room >= 0:
                self._room = room
                self._parser.feed_data(data)
            else:
                self._feed_head(data)
        except httptools.HttpParserUpgrade:
            self._refuse(501, "upgrade_unsupported",
                         "the router does not pass on protocol upgrades")
        except httptools.HttpParserCallbackError:
            if not self._stopped:
                raise
        except httptools.HttpParserError as error:
            if str(error) in _VERSION_ERRORS:
                self._refuse(
                    505, "version_unsupported",
                    f"the request line's HTTP version is not one the router "
                    f"speaks ({error}); it speaks HTTP/1.1 and HTTP/1.0",
                )
            else:
                self._refuse(400, "bad_request", f"malformed request: {error}")

    def _feed_head(self, data: bytes) -> None:
        """Feed a chunk larger than the head's room, a room's worth at a
        time: a part after which the head is still not whole is too much.

        The room is given back whole as each head ends (on_headers_complete)
        and a body's bytes are not charged, so the start of a head that
        arrives in one read with the end of the request before it goes
        free: a pipelined head may take that much more (a read is 250 KB
        at most under uvloop), never an unbounded amount.
        """
        view = memoryview(data)
        while view:
            if self._waiting == _BODY:
                self._parser.feed_data(view)
                return

            room = self._room
            if len(view) <= room:
                self._room = room - len(view)
                self._parser.feed_data(view)
                return

            self._room = 0
            self._parser.feed_data(view[:room])
            if self._stopped:
                return

            if not self._room:
                self._refuse(
                    431, "headers_too_large",
                    f"request line and headers of more than {self._max_head} "
                    f"bytes; the router takes {self._max_head} at most",
                )
                return

            view = view[room:]

    # Parser callbacks --------------------------------------------------

    def on_message_begin(self) -> None:
        self._waiting = _HEAD
        self._since = self._began = self._loop.time()  # type: ignore[union-attr]
        self._url = b""
        self._headers = []
        self._body = []
        self._size = 0
        self._framed = False
        self._coded = False
        self._hosts = 0
        self._expect = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        # One look-up for the headers that matter: most headers are others.
        if lowered in _WATCHED:
            if lowered == b"host":
                self._hosts += 1
            elif lowered == b"content-length":
                self._framed = True
                if int(value) > self._max_body:
                    self._too_large(int(value))
            elif lowered == b"transfer-encoding":
                self._transfer_coding(value)
            elif value.lower() == b"100-continue":
                self._expect = True
        self._headers.append((name, value))

    def _transfer_coding(self, value: bytes) -> None:
        # Chunked alone: the router decodes no other coding, so a body
        # coded otherwise ("gzip, chunked") would reach the backend as
        # something other than what its headers say. Given twice, it is a
        # framing two parsers may read their own way.
        if self._coded or value.strip().lower() != b"chunked":
            self._refuse(
                400, "bad_request",
                f"Transfer-Encoding {value.decode('latin-1')!r}"
                f"{' given twice' if self._coded else ''}: the router takes "
                "one Transfer-Encoding, chunked",
            )
            raise _Stop()
        self._coded = self._framed = True

    def on_headers_complete(self) -> None:
        self._room = self._max_head
        version = self._version = self._parser.get_http_version()
        if (
            self._hosts != 1 or version != "1.1"
            or len(self._headers) > MAX_HEADERS
        ):
            self._judge_head(version)
        if self._framed:
            self._waiting = _BODY
            self._since = self._loop.time()  # type: ignore[union-attr]
        if self._expect and not self._queue and not self._busy and self.transport:
            self.transport.write(_CONTINUE)

    def _judge_head(self, version: str) -> None:
        """Refuse a head that is whole but not what HTTP/1.1 allows (RFC
        9112): a version the router does not speak, too many headers, or a
        Host missing from an HTTP/1.1 request or given twice, which a
        backend and a cache in between could each read their own way."""
        count = len(self._headers)
        if version not in _VERSIONS:
            self._refuse(
                505, "version_unsupported",
                f"HTTP/{version} is not a version the router speaks; it "
                "speaks HTTP/1.1 and HTTP/1.0",
            )
        elif count > MAX_HEADERS:
            self._refuse(
                431, "too_many_headers",
                f"{count} request headers; the router takes {MAX_HEADERS} at most",
            )
        elif self._hosts > 1:
            self._refuse(
                400, "repeated_host",
                f"{self._hosts} Host headers; a request has exactly one",
            )
        elif not self._hosts and version == "1.1":
            self._refuse(400, "missing_host",
                         "an HTTP/1.1 request without a Host header")
        elif self._coded and version == "1.0":
            # HTTP/1.0 has no chunked coding: RFC 9112 calls such framing
            # faulty, and a backend speaking 1.0 would read it otherwise.
            self._refuse(400, "bad_request",
                         "an HTTP/1.0 request with a Transfer-Encoding; "
                         "HTTP/1.0 bodies are framed by Content-Length")
        else:
            return

        raise _Stop()

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._max_body:
            self._too_large(self._size)
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._waiting = _IDLE
        parser = self._parser
        if parser.should_upgrade():
            # Refused as the parser raises HttpParserUpgrade right after.
            return

        request = Request(
            parser.get_method().decode("ascii"),
            self._url,
            self._headers,
            b"".join(self._body) if self._framed else None,
            self.client,
            scheme=self._scheme,
            keep_alive=parser.should_keep_alive(),
            version=self._version,
        )
        self._enqueue(request)

    # Answering ---------------------------------------------------------

    def _too_large(self, size: int) -> None:
        self._refuse(
            413, "body_too_large",
            f"request body of {size} bytes or more is over the router's limit "
            f"of {self._max_body} bytes",
        )
        raise _Stop()

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._stopped = True
        self._enqueue(_Refusal(status, code, message))
        if self._refused is not None:
            seconds = self._loop.time() - self._began  # type: ignore[union-attr]
            self._refused(status, code, seconds)

    def _enqueue(self, item: Request | _Refusal) -> None:
        self._queue.append(item)
        if len(self._queue) > _PIPELINED and self.transport is not None:
            self.transport.pause_reading()
            self._paused_reading = True
        if not self._busy:
            self._busy = True
            # The loop is kept, not asked for: asking costs a system call.
            self._loop.create_task(self._answer_all())  # type: ignore[union-attr]

    async def _answer_all(self) -> None:
        transport = self.transport
        assert transport is not None
        try:
            while self._queue:
                item = self._queue.popleft()
                if self._paused_reading and len(self._queue) < _PIPELINED // 2:
                    self._paused_reading = False
                    transport.resume_reading()
                if isinstance(item, _Refusal):
                    if self._closed:
                        return
                    transport.write(item.data)
                    # Let the client read the refusal before the close.
                    asyncio.get_running_loop().call_later(_LINGER, transport.close)
                    return

                try:
                    answer = await self._handler(item)
                except Exception:
                    log.exception("no answer for %s %r", item.method, item.target)
                    if self._refused is not None:
                        # When the request began is not kept for this.
                        self._refused(502, "router_error", 0.0)
                    if not self._closed:
                        transport.write(_Refusal(
                            502, "router_error", "the router failed on this request"
                        ).data)
                        transport.close()
                    return

                if answer.stream is None:
                    self._write_whole(item, answer)
                else:
                    await self._write_stream(item, answer)
                if not item.keep_alive or self._closed:
                    transport.close()
                    return
        finally:
            self._busy = False
            self._served = True
            if self._waiting == _IDLE:
                self._since = self._loop.time()  # type: ignore[union-attr]

    # Client timeouts ---------------------------------------------------

    def _check(self) -> None:
        """The timer: cut off a client past its deadline, else wait again."""
        self._timer = None
        if self._closed or self._stopped:
            return

        loop = self._loop
        assert loop is not None
        timeouts = self._timeouts
        now = loop.time()
        waiting = self._waiting
        if self._paused_reading or (
            waiting == _IDLE and (self._busy or self._queue)
        ):
            # Being answered, or not read from: nothing to hold against it.
            deadline = now + timeouts.head
        elif waiting == _HEAD:
            deadline = self._since + timeouts.head
            if now >= deadline:
                self._cut_off(
                    f"the request's head did not arrive within {timeouts.head:g} s"
                )
                return
        elif waiting == _BODY:
            deadline = (
                self._since + timeouts.body_grace + self._size / timeouts.body_rate
            )
            if now >= deadline:
                self._cut_off(
                    f"the request's body arrived slower than {timeouts.body_rate:g} "
                    f"bytes/s ({self._size} bytes in {now - self._since:.1f} s)"
                )
                return
        else:
            wait = timeouts.keep_alive if self._served else timeouts.head
            deadline = self._since + wait
            if now >= deadline:
                # Between requests nobody waits for an answer: just close.
                log.debug("closing a connection from %s idle for %g s",
                          self.client, wait)
                if self.transport is not None:
                    self.transport.close()
                return
        self._timer = loop.call_at(deadline, self._check)

    def _cut_off(self, problem: str) -> None:
        log.info("cutting off %s: %s", self.client, problem)
        self._refuse(408, "request_timeout", problem)

    def _head(self, request: Request, answer: Answer) -> list[bytes]:
        lines = [b"HTTP/1.1 %d %s\r\n" % (answer.status, answer.reason)]
        for name, value in answer.headers:
            lines += (name, b": ", value, b"\r\n")
        if not request.keep_alive:
            lines.append(b"Connection: close\r\n")
        return lines

    def _write_whole(self, request: Request, answer: Answer) -> None:
        transport = self.transport
        if self._closed or transport is None:
            return

        lines = self._head(request, answer)
        status = answer.status
        if answer.bodiless or status in (204, 304) or status < 200:
            if answer.length is not None and status != 204:
                lines.append(b"Content-Length: %d\r\n" % answer.length)
            lines.append(b"\r\n")
        else:
            body = answer.body or b""
            lines += (b"Content-Length: %d\r\n\r\n" % len(body), body)
        transport.write(b"".join(lines))

    async def _write_stream(self, request: Request, answer: Answer) -> None:
        transport = self.transport
        stream = answer.stream
        assert transport is not None and stream is not None
        if self._closed:
            await stream.aclose()  # type: ignore[attr-defined]
            return

        keep = request.keep_alive
        lines = self._head(request, answer)
        chunked = answer.length is None and request.version == "1.1"
        if answer.length is not None:
            lines.append(b"Content-Length: %d\r\n" % answer.length)
        elif chunked:
            lines.append(b"Transfer-Encoding: chunked\r\n")
        else:
            # An HTTP/1.0 client learns the end of the body from the close.
            request.keep_alive = False
            if keep:
                lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        transport.write(b"".join(lines))
        async for chunk in stream:
            if self._closed:
                break
            if chunked:
                transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                transport.write(chunk)
            if self._writable is not None:
                await self._writable
        if chunked and not self._closed:
            transport.write(b"0\r\n\r\n")


def settle_memory() -> None:
    """Move everything alive at start-up out of the collector's way.

    A server's modules, classes and tables live as long as it does; the
    cyclic garbage collector would walk all of them on every full
    collection, which on a busy router comes every few thousand requests.
    Call once, after start-up."""
    import gc

    gc.collect()
    gc.freeze()


async def serve_http(
    handler: Handler,
    host: str,
    port: int,
    *,
    max_body: int,
    backlog: int = 1024,
    scheme: str = "http",
    timeouts: ClientTimeouts | None = None,
    max_head: int = MAX_HEAD,
    refused: Refused | None = None,
) -> asyncio.Server:
    """Listen on host:port and answer every request through `handler`;
    `refused` is told of each answer the wire layer makes itself (400, 408,
    413, 431, 501, 505, and 502 when the handler fails)."""
    loop = asyncio.get_running_loop()
    limits = timeouts or ClientTimeouts()
    return await loop.create_server(
        lambda: _ClientConnection(handler, max_body, scheme, limits, max_head,
                                  refused),
        host,
        port,
        backlog=backlog,
        reuse_address=True,
    )


# The backend side -------------------------------------------------------


class UpstreamError(Exception):
    """A backend gave no complete answer: refused, reset, or timed out.

    `sent` is False when the request certainly never reached the backend
    (the connection could not be made), so it is safe to send anywhere.
    """

    def __init__(self, backend: str, problem: str, *, timed_out: bool, sent: bool):
        super().__init__(f"{backend}: {problem}")
        self.backend = backend
        self.problem = problem
        self.timed_out = timed_out
        self.sent = sent


class UpstreamAnswer:
    """A backend's answer: status and headers at once, the body as it comes."""

    __slots__ = ("status", "reason", "headers", "length", "complete", "_chunks",
                 "_buffered", "_waiter", "_error", "_connection")

    def __init__(self, connection: _UpstreamConnection):
        self.status = 0
        self.reason = b""
        self.headers: Headers = []
        self.length: int | None = None
        self.complete = False
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._connection = connection

    @property
    def whole(self) -> bool:
        """Whether the body is small enough to be read whole."""
        return self.complete or (
            self.length is not None and self.length <= _WHOLE_BODY
        )

    def body_now(self) -> bytes | None:
        """The whole body if it has all arrived, else None; never waits."""
        if not self.complete:
            return None

        chunks = self._chunks
        if len(chunks) == 1:
            return chunks[0]

        return b"".join(chunks)

    async def read(self) -> bytes:
        """The whole body; raises UpstreamError if the backend broke off."""
        while not self.complete:
            if self._error is not None:
                raise self._error
            await self._wait()
        if len(self._chunks) == 1:
            return self._chunks[0]

        return b"".join(self._chunks)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in pieces as they arrive; stops early if the backend breaks."""
        try:
            while True:
                if self._chunks:
                    chunks, self._chunks = self._chunks, []
                    self._buffered = 0
                    self._connection.drained()
                    for chunk in chunks:
                        yield chunk
                    continue
                if self.complete or self._error is not None:
                    return
                await self._wait()
        finally:
            self.discard()

    def discard(self) -> None:
        """Give up on the rest of the body; the connection is not reused."""
        if not self.complete:
            self._connection.abandon()

    def _wait(self) -> asyncio.Future[None]:
        self._waiter = self._connection.loop.create_future()
        return self._waiter

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        self._wake()

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: Exception) -> None:
        self._error = error
        self._wake()


class _UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to a backend; one exchange at a time."""

    def __init__(self, pool: Upstream, loop: asyncio.AbstractEventLoop):
        self._pool = pool
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._answer: UpstreamAnswer | None = None
        self._headers_ready: asyncio.Future[UpstreamAnswer] | None = None
        self._received = 0
        self._last_read = 0.0
        # When the answer's first byte is due, on the loop's clock.
        self.due = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._bodiless = False
        self._interim = False
        self._paused = False
        self._chunked = False
        self._parser = httptools.HttpResponseParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        answer = self._answer
        if answer is not None and not answer.complete and self._headers_done:
            if answer.length is None and not self._chunked:
                # No length, no chunks: the body ran until the close.
                answer._finish()
            else:
                answer._fail(self._error("closed the connection mid-answer"))
        self._fail_headers("closed the connection before answering")
        self._pool._forget(self)

    @property
    def _headers_done(self) -> bool:
        return self._headers_ready is None or self._headers_ready.done()

    def exchange(
        self, data: bytes, bodiless: bool, timeout: float,
        due: float | None = None,
    ) -> asyncio.Future[UpstreamAnswer]:
        """Send a request; its answer's first byte is due `timeout` seconds
        from now, or at `due` when the exchange began before (a connection
        was waited for or made first)."""
        loop = self.loop
        assert self.transport is not None
        self._answer = UpstreamAnswer(self)
        self._headers_ready = loop.create_future()
        self._received = 0
        self._bodiless = bodiless
        self._chunked = False
        now = self._last_read = loop.time()
        due = self.due = now + timeout if due is None else due
        self._timer = loop.call_at(due, self._check, timeout)
        self.transport.write(data)
        return self._headers_ready

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        self._last_read = self.loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if not isinstance(error.__context__, _Stop):
                self._broken(f"answered in a way the router cannot read: {error}")
        except httptools.HttpParserError as error:
            self._broken(f"answered in a way the router cannot read: {error}")

    def on_status(self, reason: bytes) -> None:
        if self._answer is not None:
            self._answer.reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        answer = self._answer
        if answer is None:
            return
        lowered = name.lower()
        if lowered == b"content-length":
            answer.length = int(value)
        elif lowered == b"transfer-encoding":
            self._chunked = True
        answer.headers.append((name, value))

    def on_headers_complete(self) -> None:
        answer = self._answer
        if answer is None:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._interim = True
            answer.headers = []
            answer.length = None
            return

        answer.status = status
        ready = self._headers_ready
        if ready is not None and not ready.done():
            ready.set_result(answer)
        if self._bodiless:
            # llhttp cannot be told a HEAD answer has no body: end it here
            # and start a fresh parser for the next answer.
            self._parser = httptools.HttpResponseParser(self)
            self._done(keep_alive=True)
            raise _Stop()

    def on_body(self, body: bytes) -> None:
        answer = self._answer
        if answer is None:
            return
        answer._feed(body)
        if answer._buffered > _HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._done(keep_alive=self._parser.should_keep_alive())

    def _done(self, keep_alive: bool) -> None:
        self._cancel_timer()
        answer = self._answer
        self._answer = None
        if answer is not None:
            answer._finish()
        if keep_alive and not self.closed:
            self._pool._release(self)
        elif self.transport is not None:
            self.transport.close()

    def drained(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def abandon(self) -> None:
        self._answer = None
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()

    def _check(self, timeout: float) -> None:
        loop = self.loop
        due = self._last_read + timeout if self._received else self.due
        if loop.time() < due:
            self._timer = loop.call_at(due, self._check, timeout)
            return

        self._timer = None
        error = UpstreamError(
            self._pool.name, f"no answer within {timeout} s", timed_out=True, sent=True
        )
        self._fail_all(error)

    def _broken(self, problem: str) -> None:
        self._fail_all(self._error(problem))

    def _fail_all(self, error: UpstreamError) -> None:
        ready = self._headers_ready
        if ready is not None and not ready.done():
            ready.set_exception(error)
        if self._answer is not None:
            self._answer._fail(error)
            self._answer = None
        if self.transport is not None:
            self.transport.abort()

    def _fail_headers(self, problem: str) -> None:
        ready = self._headers_ready
        if ready is not None and not ready.done():
            ready.set_exception(self._error(problem))

    def _error(self, problem: str) -> UpstreamError:
        return UpstreamError(self._pool.name, problem, timed_out=False, sent=True)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def fresh_failure(self) -> bool:
        """Closed without a byte of answer: the backend had dropped it idle."""
        return self._received == 0


class Upstream:
    """A pool of keep-alive connections to one backend base URL."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout: float = 10.0,
        idle_timeout: float = 15.0,
        limit: int = 512,
    ):
        parts = urllib.parse.urlsplit(url)
        self.name = name
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.limit = limit
        self._idle: list[_UpstreamConnection] = []
        self._open = 0
        self._closed = False
        # Set by the first exchange: a pool serves the loop it is used on.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if self.tls else None
        )

    async def exchange(
        self, data: bytes, *, bodiless: bool = False, retry_stale: bool = False
    ) -> UpstreamAnswer:
        """Send one serialized request and wait for the answer's headers.

        A reused connection the backend had already closed fails without a
        byte of answer; with `retry_stale` the request is sent once more on
        a new connection (for requests that are safe to send twice), by the
        time the first answer was due. One that timed out is not.
        """
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        connection = self._idle_connection()
        if connection is None:
            due = loop.time() + self.timeout
            connection = await self._connect(due)
            return await connection.exchange(data, bodiless, self.timeout, due)

        try:
            return await connection.exchange(data, bodiless, self.timeout)
        except UpstreamError as error:
            # A backend that took the request and said nothing for the
            # whole timeout is stalled, not a stale connection: sending
            # again would make the caller wait a second timeout.
            if error.timed_out or not (retry_stale and connection.fresh_failure):
                raise

            due = connection.due
        connection = await self._connect(due)
        return await connection.exchange(data, bodiless, self.timeout, due)

    def _idle_connection(self) -> _UpstreamConnection | None:
        idle = self._idle
        if not idle:
            return None

        now = self._loop.time()  # type: ignore[union-attr]
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if now - connection.idle_since > self.idle_timeout:
                connection.abandon()
                continue
            return connection
        return None

    async def _connect(self, due: float) -> _UpstreamConnection:
        """A connection to send on: one freed while waiting for the pool's
        limit, or a new one; by `due` (the loop's clock), else UpstreamError."""
        loop = self._loop or asyncio.get_running_loop()
        opening = False
        opened: _UpstreamConnection | None = None
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that
            # lands as the connection is made (CPython gh-86296), and the
            # cancelled request would carry on.
            async with asyncio.timeout_at(due):
                while self._open >= self.limit:
                    connection = await self._freed(loop)
                    if connection is not None:
                        return connection

                self._open += 1
                opening = True
                _, opened = await loop.create_connection(
                    lambda: _UpstreamConnection(self, loop), self.host, self.port,
                    ssl=self._ssl,
                )
        except TimeoutError:
            problem = (
                f"no connection within {self.timeout} s" if opening
                else f"all {self.limit} connections busy for {self.timeout} s"
            )
            raise UpstreamError(
                self.name, problem, timed_out=True, sent=False
            ) from None
        except OSError as error:
            raise UpstreamError(
                self.name, f"cannot connect: {error}", timed_out=False, sent=False
            ) from None
        finally:
            if opening and opened is None:
                self._open -= 1
                self._wake_one()
        return opened

    async def _freed(
        self, loop: asyncio.AbstractEventLoop
    ) -> _UpstreamConnection | None:
        """Wait for a connection to come back to the pool or close."""
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Woken as the deadline struck: the wake is someone else's.
                self._wake_one()
            raise
        return self._idle_connection()

    def _release(self, connection: _UpstreamConnection) -> None:
        if self._closed:
            # The pool was closed while this answer came in: nobody takes
            # the connection from it again.
            if connection.transport is not None:
                connection.transport.close()
            return

        connection.idle_since = connection.loop.time()
        self._idle.append(connection)
        self._wake_one()

    def _forget(self, connection: _UpstreamConnection) -> None:
        self._open -= 1
        if connection in self._idle:
            self._idle.remove(connection)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close every idle connection; busy ones close when their answer ends."""
        self._closed = True
        for connection in self._idle:
            connection.abandon()
        self._idle.clear()
