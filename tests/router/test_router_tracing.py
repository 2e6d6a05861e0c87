"""Tracing: headers to backends, sampled segments to the daemon's port."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from router_servers import EchoBackend, RunningRouter, eventually

from migrate.observe import tracing
from migrate.observe.tracing import RequestTracer

StartRouter = Callable[..., RunningRouter]


@pytest.fixture
def daemon() -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.2)
    yield listener
    listener.close()


def _address(daemon: socket.socket) -> str:
    host, port = daemon.getsockname()
    return f"{host}:{port}"


def _segments(daemon: socket.socket) -> list[dict[str, object]]:
    found = []
    while True:
        try:
            data = daemon.recv(65536)
        except TimeoutError:
            return found
        header, _, body = data.partition(b"\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        found.append(json.loads(body))


def test_a_sampled_request_sends_its_segment_and_continues_the_trace(
    start_router: StartRouter, monolith: EchoBackend, daemon: socket.socket
) -> None:
    router = start_router(tracing=True, trace_address=_address(daemon))

    router.get("/orders/1")

    segments = _segments(daemon)
    sent = monolith.received[0]["headers"]["X-Amzn-Trace-Id"]
    assert len(segments) == 1
    segment = segments[0]
    assert segment["name"] == "router"
    assert segment["http"] == {"request": {"method": "GET", "url": "/orders/1"},
                               "response": {"status": 200}}
    assert segment["annotations"] == {"context": "(unmatched)", "backend": "monolith"}
    assert sent == f"Root={segment['trace_id']};Parent={segment['id']};Sampled=1"


def test_past_the_first_each_second_about_five_percent_are_sampled(
    start_router: StartRouter, monolith: EchoBackend, daemon: socket.socket
) -> None:
    router = start_router(tracing=True, trace_address=_address(daemon))

    for n in range(300):
        router.get(f"/orders/{n}")

    sampled = [s for s in (seen["headers"]["X-Amzn-Trace-Id"]
                           for seen in monolith.received) if s.endswith("Sampled=1")]
    assert 3 <= len(sampled) <= 45
    assert eventually(lambda: len(_segments(daemon)) >= 1)


def test_a_client_decision_not_to_sample_is_kept(
    start_router: StartRouter, monolith: EchoBackend, daemon: socket.socket
) -> None:
    router = start_router(tracing=True, trace_address=_address(daemon))
    root = "1-5759e988-bd862e3fe1be46a994272793"

    router.get("/orders/1", headers={"X-Amzn-Trace-Id": f"Root={root};Sampled=0"})

    assert monolith.received[0]["headers"]["X-Amzn-Trace-Id"] == (
        f"Root={root};Sampled=0"
    )
    assert _segments(daemon) == []


def test_a_client_trace_is_continued_with_the_router_as_parent(
    start_router: StartRouter, monolith: EchoBackend, daemon: socket.socket
) -> None:
    router = start_router(tracing=True, trace_address=_address(daemon))
    root = "1-5759e988-bd862e3fe1be46a994272793"

    router.get("/orders/1",
               headers={"X-Amzn-Trace-Id": f"Root={root};Parent=53995c3f42cd8ad8;"
                                           "Sampled=1"})

    segment = _segments(daemon)[0]
    assert segment["trace_id"] == root
    assert segment["parent_id"] == "53995c3f42cd8ad8"


def test_without_tracing_no_trace_header_is_added(
    router: RunningRouter, monolith: EchoBackend
) -> None:
    router.get("/orders/1")

    assert "X-Amzn-Trace-Id" not in monolith.received[0]["headers"]


def test_trace_ids_are_unique_and_well_formed() -> None:
    tracer = RequestTracer(1, 0.0, "127.0.0.1:9")

    lines = [
        tracer.begin(None, time.monotonic())[0].decode() for _ in range(1000)
    ]

    roots = {
        line.split(";")[0].removeprefix("X-Amzn-Trace-Id: Root=") for line in lines
    }
    assert len(roots) == 1000
    assert all(len(r) == 35 and r.startswith("1-") for r in roots)


def _sampled_of(tracer: RequestTracer, requests: int, now: float) -> int:
    return sum(tracer.begin(None, now)[1] is not None for _ in range(requests))


def test_the_rule_samples_its_rate_of_new_traces() -> None:
    tracer = RequestTracer(0, 0.05, "127.0.0.1:9")

    sampled = _sampled_of(tracer, 100_000, time.monotonic())

    # 5,000 expected; 300 is more than four standard deviations.
    assert 4_700 <= sampled <= 5_300


def test_the_first_requests_of_each_second_are_sampled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wall = [1_800_000_000.5]
    monkeypatch.setattr(tracing, "time", SimpleNamespace(time=lambda: wall[0]))
    tracer = RequestTracer(3, 0.0, "127.0.0.1:9")

    first = [tracer.begin(None, 100.0)[1] is not None for _ in range(10)]
    wall[0] += 1.0
    next_second = _sampled_of(tracer, 10, 101.0)

    assert first == [True] * 3 + [False] * 7
    assert next_second == 3


def test_a_rate_of_one_samples_every_request_and_zero_none() -> None:
    every = RequestTracer(0, 1.0, "127.0.0.1:9")
    none = RequestTracer(0, 0.0, "127.0.0.1:9")
    now = time.monotonic()

    assert _sampled_of(every, 100, now) == 100
    assert _sampled_of(none, 100, now) == 0


def test_trace_ids_stay_unique_when_the_two_clocks_disagree_on_the_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wall = [1_800_000_000.9]
    monkeypatch.setattr(tracing, "time", SimpleNamespace(time=lambda: wall[0]))
    tracer = RequestTracer(0, 0.0, "127.0.0.1:9")

    lines = [tracer.begin(None, 100.0)[0] for _ in range(3)]
    # The monotonic clock is past the second's end; the wall clock, stepped
    # back, is not.
    wall[0] -= 0.5
    lines += [tracer.begin(None, 101.0)[0] for _ in range(3)]

    assert len(set(lines)) == 6


def test_segments_leave_together_once_a_burst_is_waiting(
    daemon: socket.socket,
) -> None:
    tracer = RequestTracer(0, 1.0, _address(daemon))
    now = time.monotonic()

    def request(n: int) -> None:
        _, segment = tracer.begin(None, now)
        assert segment is not None
        tracer.end(segment, "GET", f"/orders/{n}", 200, "ordering", "monolith")

    for n in range(tracing.BURST - 1):
        request(n)
    before = _segments(daemon)
    request(tracing.BURST)
    burst = _segments(daemon)
    request(0)
    tracer.flush()

    assert before == []
    assert len(burst) == tracing.BURST
    assert len(_segments(daemon)) == 1


def test_segments_the_daemon_refuses_are_counted_and_never_raised() -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    host, port = closed.getsockname()
    closed.close()
    tracer = RequestTracer(0, 1.0, f"{host}:{port}")
    now = time.monotonic()

    for n in range(4 * tracing.BURST):
        _, segment = tracer.begin(None, now)
        assert segment is not None
        tracer.end(segment, "GET", f"/orders/{n}", 200, "ordering", "monolith")
    tracer.flush()

    # Loopback answers a datagram to a closed port at once, and the
    # connected socket reports it on the next send.
    assert tracer.dropped > 0
