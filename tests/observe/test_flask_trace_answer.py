"""A traced Flask app answers with the caller's trace, never the SDK's
all-zero id for a request it did not sample."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator

import pytest

from migrate.observe.tracing import HEADER

_APP = textwrap.dedent("""
    import sys

    import flask

    from migrate.observe import tracing

    tracing.configure("shop")
    app = flask.Flask("shop")
    tracing.instrument_flask(app)
    app.add_url_rule("/ping", "ping", lambda: "pong")
    app.run(port=int(sys.argv[1]))
""")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def unsampling_app() -> Iterator[str]:
    port = _free_port()
    environment = dict(
        os.environ, MIGRATE_TRACING="on", MIGRATE_TRACE_RATE="0",
        MIGRATE_TRACE_PER_SECOND="0", AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:9",
    )
    app = subprocess.Popen(
        [sys.executable, "-c", _APP, str(port)], env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                if app.poll() is not None:
                    pytest.fail("the traced app did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        app.terminate()
        app.wait(10)


def _answer_header(url: str, header: str | None) -> str | None:
    request = urllib.request.Request(url + "/ping")
    if header is not None:
        request.add_header(HEADER, header)
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.headers.get(HEADER)


def test_an_unsampled_request_is_answered_with_the_callers_root(
    unsampling_app: str,
) -> None:
    root = "1-6a000000-0123456789abcdef01234567"

    answered = _answer_header(unsampling_app, f"Root={root};Sampled=0")

    assert answered == f"Root={root};Sampled=0"


def test_an_unsampled_request_without_a_trace_is_answered_without_one(
    unsampling_app: str,
) -> None:
    assert _answer_header(unsampling_app, None) is None
