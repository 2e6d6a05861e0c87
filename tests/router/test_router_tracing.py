"""Tracing: headers to backends, sampled segments to the daemon's port."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import pytest
from router_servers import EchoBackend, RunningRouter, eventually

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

    lines = [tracer.begin(None)[0].decode() for _ in range(1000)]

    roots = {
        line.split(";")[0].removeprefix("X-Amzn-Trace-Id: Root=") for line in lines
    }
    assert len(roots) == 1000
    assert all(len(r) == 35 and r.startswith("1-") for r in roots)
