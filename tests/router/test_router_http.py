"""HTTP hygiene on raw sockets: smuggling refused, framing, pipelining,
slow and silent clients cut off."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable

import pytest
from router_servers import EchoBackend, RunningRouter, raw_exchange, statuses

from migrate.router.http1 import MAX_HEAD, MAX_HEADERS, ClientTimeouts, Upstream


def _posts(backend: EchoBackend) -> list[dict[str, object]]:
    return [seen for seen in backend.received if seen["method"] == "POST"]


SMUGGLING = {
    "content-length and chunked": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n"
    ),
    "chunked and content-length": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 4\r\n\r\n0\r\n\r\n"
    ),
    "two content-lengths": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 1\r\n"
        b"Content-Length: 2\r\n\r\nab"
    ),
    "a content-length that is not a number": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: abc\r\n\r\n"
    ),
    "a negative content-length": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: -1\r\n\r\n"
    ),
    "a list of content-lengths": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 2, 2\r\n\r\nab"
    ),
    "an unknown transfer coding": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: xchunked\r\n"
        b"\r\n0\r\n\r\n"
    ),
    "an unknown coding before chunked": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: foo, chunked"
        b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ),
    "gzip before chunked": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: gzip, chunked"
        b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ),
    "chunked in HTTP/1.0": (
        b"POST /orders HTTP/1.0\r\nHost: shop\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ),
    "chunked twice": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "a space before the colon": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding : chunked\r\n"
        b"\r\n0\r\n\r\n"
    ),
    "a malformed chunk size": (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n"
        b"\r\nzz\r\nab\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("attempt", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_an_ambiguously_framed_request_is_refused_with_400(
    router: RunningRouter, monolith: EchoBackend, attempt: bytes
) -> None:
    answer = raw_exchange(router.port, attempt)

    assert statuses(answer) == [400]
    assert b"Connection: close" in answer
    assert monolith.received == []


HOSTLESS = {
    "no host in HTTP/1.1": (
        b"GET /orders HTTP/1.1\r\nAccept: */*\r\n\r\n", b"missing_host"
    ),
    "two hosts": (
        b"GET /orders HTTP/1.1\r\nHost: shop\r\nHost: admin\r\n\r\n",
        b"repeated_host",
    ),
    "two hosts in HTTP/1.0": (
        b"GET /orders HTTP/1.0\r\nHost: shop\r\nhost: admin\r\n\r\n",
        b"repeated_host",
    ),
}


@pytest.mark.parametrize(("attempt", "code"), HOSTLESS.values(), ids=HOSTLESS.keys())
def test_a_request_without_exactly_one_host_is_refused_with_400(
    router: RunningRouter, monolith: EchoBackend, attempt: bytes, code: bytes
) -> None:
    answer = raw_exchange(router.port, attempt)

    assert statuses(answer) == [400]
    assert b'"%s"' % code in answer
    assert b"Connection: close" in answer
    assert monolith.received == []


def test_an_http_1_0_request_may_come_without_a_host(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    answer = raw_exchange(router.port, b"GET /orders HTTP/1.0\r\n\r\n")

    assert statuses(answer) == [200]
    # Sent on as HTTP/1.1, which must have a Host: an empty one.
    assert [seen["headers"]["Host"] for seen in monolith.received] == [""]  # type: ignore[index]


VERSIONS = {
    "HTTP/2.0": b"GET /orders HTTP/2.0\r\nHost: shop\r\n\r\n",
    "HTTP/0.9": b"GET /orders HTTP/0.9\r\nHost: shop\r\n\r\n",
    "HTTP/1.2": b"GET /orders HTTP/1.2\r\nHost: shop\r\n\r\n",
    "HTTP/3.0": b"GET /orders HTTP/3.0\r\nHost: shop\r\n\r\n",
    "HTTP/2's preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}


@pytest.mark.parametrize("attempt", VERSIONS.values(), ids=VERSIONS.keys())
def test_a_version_the_router_does_not_speak_is_refused_with_505(
    router: RunningRouter, monolith: EchoBackend, attempt: bytes
) -> None:
    answer = raw_exchange(router.port, attempt)

    assert statuses(answer) == [505]
    assert b'"version_unsupported"' in answer
    assert monolith.received == []


def test_a_smuggled_request_after_a_refusal_is_never_forwarded(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    attempt = (
        b"GET /orders HTTP/1.1\r\nHost: shop\r\n\r\n"
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 30\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"DELETE /orders/1 HTTP/1.1\r\nHost: shop\r\n\r\n"
    )

    answer = raw_exchange(router.port, attempt)

    assert statuses(answer) == [200, 400]
    assert [seen["method"] for seen in monolith.received] == ["GET"]


def test_a_chunked_body_reaches_the_backend_with_its_length(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    request = (
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )

    answer = raw_exchange(router.port, request)

    assert statuses(answer) == [200]
    seen = _posts(monolith)[0]
    assert seen["body"] == "hello world"
    headers = {k.lower(): v for k, v in seen["headers"].items()}  # type: ignore[union-attr]
    assert headers["content-length"] == "11"
    assert "transfer-encoding" not in headers


def test_pipelined_requests_are_answered_in_order(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    requests = b"".join(
        b"GET /orders/%d HTTP/1.1\r\nHost: shop\r\n\r\n" % n for n in range(5)
    ) + b"GET /orders/5 HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"

    answer = raw_exchange(router.port, requests)

    paths = [
        part.split(b'"path": "')[1].split(b'"')[0].decode()
        for part in answer.split(b"HTTP/1.1 ")[1:]
    ]
    assert paths == [f"/orders/{n}" for n in range(6)]


def test_an_http_1_0_client_gets_its_answer_and_the_connection_closes(
    router: RunningRouter,
) -> None:
    answer = raw_exchange(router.port, b"GET /orders HTTP/1.0\r\nHost: shop\r\n\r\n")

    assert statuses(answer) == [200]
    assert b"Connection: close" in answer


def test_expect_100_continue_is_answered_before_the_body(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    with socket.create_connection(("127.0.0.1", router.port), timeout=5) as sock:
        sock.sendall(
            b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        interim = sock.recv(1024)
        sock.sendall(b"hello")
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk

    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert statuses(rest) == [200]
    assert _posts(monolith)[0]["body"] == "hello"


def test_a_websocket_upgrade_is_refused(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    answer = raw_exchange(
        router.port,
        b"GET /chat HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\n\r\n",
    )

    assert statuses(answer) == [501]
    assert monolith.received == []


def test_a_declared_body_over_the_limit_is_refused_at_once(
    start_router: object, monolith: EchoBackend
) -> None:
    router = start_router(max_body=1000)  # type: ignore[operator]

    answer = raw_exchange(
        router.port,
        b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 5000\r\n\r\n",
    )

    assert statuses(answer) == [413]
    assert monolith.received == []


def test_a_head_over_the_limit_is_refused_with_431_before_it_ends(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    # The header never ends: the router must not wait for it to.
    attempt = b"GET /orders HTTP/1.1\r\nHost: shop\r\nX-Big: " + b"a" * MAX_HEAD

    answer = raw_exchange(router.port, attempt)

    assert statuses(answer) == [431]
    assert b'"headers_too_large"' in answer
    assert b"more than %d bytes" % MAX_HEAD in answer
    assert b"Connection: close" in answer
    assert monolith.received == []


def test_a_head_sent_in_pieces_is_charged_for_each(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    with socket.create_connection(("127.0.0.1", router.port), timeout=5) as sock:
        sock.sendall(b"GET /orders HTTP/1.1\r\nHost: shop\r\n")
        for _ in range(MAX_HEAD // 1000 + 1):
            sock.sendall(b"X-Part: " + b"p" * 990 + b"\r\n")
            time.sleep(0.001)

        answer, _ = _read_until_closed(sock, 5)

    assert statuses(answer) == [431]
    assert monolith.received == []


@pytest.mark.parametrize(("size", "status"), [(MAX_HEAD, 200), (MAX_HEAD + 1, 431)])
def test_a_head_of_the_limit_is_forwarded_and_one_byte_more_refused(
    router: RunningRouter, monolith: EchoBackend, size: int, status: int
) -> None:
    start = b"GET /orders HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n" + b"".join(
        b"X-Part-%d: %s\r\n" % (n, b"p" * 1000) for n in range(60)
    )
    filler = size - len(start) - len(b"X-Fill: \r\n\r\n")
    request = start + b"X-Fill: " + b"f" * filler + b"\r\n\r\n"
    assert len(request) == size

    answer = raw_exchange(router.port, request)

    assert statuses(answer) == [status]
    assert len(monolith.received) == (status == 200)


def test_a_body_larger_than_the_head_limit_is_not_taken_for_a_head(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    body = b"b" * (3 * MAX_HEAD)
    request = (b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: %d\r\n"
               b"Connection: close\r\n\r\n%s" % (len(body), body))

    answer = raw_exchange(router.port, request)

    assert statuses(answer) == [200]
    assert _posts(monolith)[0]["body"] == body.decode()


def test_too_many_headers_are_refused_with_431(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    headers = b"".join(b"X-N%d: 1\r\n" % n for n in range(MAX_HEADERS))
    attempt = b"GET /orders HTTP/1.1\r\nHost: shop\r\n" + headers + b"\r\n"

    answer = raw_exchange(router.port, attempt)

    assert statuses(answer) == [431]
    assert b"%d request headers" % (MAX_HEADERS + 1) in answer
    assert monolith.received == []


def test_the_backend_connection_is_kept_alive_between_requests(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    for n in range(20):
        router.get(f"/orders/{n}")

    ports = {
        seen["headers"]["X-Forwarded-For"]  # type: ignore[index]
        for seen in monolith.received
    }
    upstream = router.router._upstreams["monolith"]  # noqa: SLF001

    assert len(monolith.received) == 20
    assert ports == {"127.0.0.1"}
    assert upstream._open == 1  # noqa: SLF001



def test_a_pool_closed_mid_answer_closes_that_connection_once_it_is_in() -> None:
    async def scenario() -> tuple[bytes, bool]:
        closed_by_router = asyncio.Event()

        async def slow_backend(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(0.2)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await reader.read()
            closed_by_router.set()

        server = await asyncio.start_server(slow_backend, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = Upstream("billing", f"http://127.0.0.1:{port}")
        pending = asyncio.ensure_future(
            pool.exchange(b"GET /invoices/1 HTTP/1.1\r\nHost: shop\r\n\r\n")
        )
        await asyncio.sleep(0.05)

        pool.close()
        body = await (await pending).read()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed_by_router.wait(), 2)
        server.close()
        return body, closed_by_router.is_set()

    body, closed = asyncio.run(scenario())

    assert body == b"ok"
    assert closed


# Client timeouts: a slow or silent client is cut off. -----------------------

QUICK = ClientTimeouts(head=0.5, body_grace=0.5, body_rate=100, keep_alive=0.8)


@pytest.fixture
def impatient(start_router: Callable[..., RunningRouter]) -> RunningRouter:
    return start_router(client_timeouts=QUICK)


def _read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    """What the router sends until it closes, and when it closed."""
    started = time.monotonic()
    sock.settimeout(seconds)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return received, float("inf")
        if not chunk:
            return received, time.monotonic() - started
        received += chunk


def _trickle(sock: socket.socket, data: bytes, pause: float) -> None:
    """Send `data` a few bytes at a time, `pause` seconds apart."""
    for offset in range(0, len(data), 4):
        sock.sendall(data[offset:offset + 4])
        time.sleep(pause)


class TestClientTimeouts:
    def test_a_head_that_trickles_in_too_slowly_gets_408_and_a_close(
        self, impatient: RunningRouter, monolith: EchoBackend
    ) -> None:
        with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
            sock.sendall(b"GET /orders HTTP/1.1\r\nHost: shop\r\n")
            # Slowloris: a header byte now and then, never the blank line.
            for _ in range(8):
                sock.sendall(b"X")
                time.sleep(0.1)

            answer, closed_after = _read_until_closed(sock, 3)

        assert statuses(answer) == [408]
        assert b'"request_timeout"' in answer
        assert b"head did not arrive within 0.5 s" in answer
        assert closed_after < 2.5
        assert monolith.received == []

    def test_a_body_that_stalls_gets_408_and_a_close(
        self, impatient: RunningRouter, monolith: EchoBackend
    ) -> None:
        with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
            sock.sendall(b"POST /orders HTTP/1.1\r\nHost: shop\r\n"
                         b"Content-Length: 100\r\n\r\n" + b"a" * 10)

            answer, closed_after = _read_until_closed(sock, 3)

        assert statuses(answer) == [408]
        assert b"body arrived slower than 100 bytes/s (10 bytes in" in answer
        assert closed_after < 2.5
        assert monolith.received == []

    def test_a_body_that_trickles_below_the_rate_is_cut_off(
        self, impatient: RunningRouter, monolith: EchoBackend
    ) -> None:
        with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
            sock.sendall(b"POST /orders HTTP/1.1\r\nHost: shop\r\n"
                         b"Content-Length: 400\r\n\r\n")
            # 4 bytes every 0.1 s is 40 bytes/s, under the 100 allowed.
            with contextlib.suppress(OSError):
                _trickle(sock, b"b" * 120, 0.1)

            answer, _ = _read_until_closed(sock, 3)

        assert statuses(answer) == [408]
        assert monolith.received == []

    def test_a_slow_client_within_its_limits_is_answered(
        self, impatient: RunningRouter, monolith: EchoBackend
    ) -> None:
        request = (b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 40\r\n"
                   b"Connection: close\r\n\r\n" + b"c" * 40)
        with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
            _trickle(sock, request, 0.004)

            answer, _ = _read_until_closed(sock, 3)

        assert statuses(answer) == [200]
        assert [seen["body"] for seen in monolith.received] == ["c" * 40]

    def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive(
        self, impatient: RunningRouter, monolith: EchoBackend
    ) -> None:
        with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
            sock.sendall(b"GET /orders HTTP/1.1\r\nHost: shop\r\n\r\n")
            time.sleep(0.5)
            # Still open past the head timeout: kept alive, the next
            # request is answered.
            sock.sendall(b"GET /orders/2 HTTP/1.1\r\nHost: shop\r\n\r\n")

            answer, closed_after = _read_until_closed(sock, 3)

        assert statuses(answer) == [200, 200]
        assert b"408" not in answer
        assert 0.6 < closed_after < 2.0

    def test_a_connection_that_never_sends_a_byte_is_closed(
        self, impatient: RunningRouter
    ) -> None:
        with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
            answer, closed_after = _read_until_closed(sock, 3)

        assert answer == b""
        assert closed_after < 1.5

    def test_a_slow_backend_does_not_count_against_the_client(
        self, impatient: RunningRouter, monolith: EchoBackend
    ) -> None:
        monolith.delay = 1.2

        answer = raw_exchange(
            impatient.port, b"GET /orders HTTP/1.1\r\nHost: shop\r\n\r\n", timeout=3
        )

        assert statuses(answer) == [200]

    def test_a_timeout_must_be_above_zero(self) -> None:
        with pytest.raises(ValueError, match="client timeout head is 0"):
            ClientTimeouts(head=0)
