"""HTTP hygiene on raw sockets: smuggling refused, framing, pipelining."""

from __future__ import annotations

import socket

import pytest
from router_servers import EchoBackend, RunningRouter, raw_exchange, statuses


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
