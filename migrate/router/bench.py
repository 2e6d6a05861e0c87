"""What the router costs per request: a fast backend called directly and
through the router, on loopback.

`bench_router()` starts, each in its own process, a minimal aiohttp backend
and a router (`python -m migrate.router`) whose state sends a keyed read
route of a context at the given read weight to that same backend (both
monolith and service point at it, so every request is matched, hashed and
proxied, and only the router's cost differs). A load generator in this
process keeps `concurrency` keep-alive connections busy and records every
request's latency. Figures are requests per second and the 50th and 99th
percentile latency in milliseconds.

The load generator is Python too: on one machine it competes with the
router for cores, and the direct figures are often bounded by the
generator rather than the backend. Compare the two rows, not the absolute
numbers with another machine's.

`python -m migrate.router.bench [--requests N] [--concurrency C]` prints the
report.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from migrate.router.state import StateStore

_ROUTES = [("GET", "/invoices/<int:invoice_id>", "invoice_id")]
_BODY = b'{"invoice_id": 1, "total": "12.50", "status": "issued"}'


@dataclasses.dataclass(frozen=True)
class Measurement:
    label: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def line(self) -> str:
        return (
            f"{self.label:<8} {self.per_second:>9.0f} req/s   "
            f"p50 {self.p50_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms"
        )


@dataclasses.dataclass(frozen=True)
class RouterBench:
    direct: Measurement
    routed: Measurement
    concurrency: int
    weight: int
    rounds: int

    def report(self) -> str:
        added = self.routed.p50_ms - self.direct.p50_ms
        heading = (
            f"router bench: {self.routed.requests} keyed reads at weight "
            f"{self.weight} %, {self.concurrency} connections, loopback, "
            f"median of {self.rounds} rounds"
        )
        return "\n".join(
            [
                heading,
                self.direct.line(),
                self.routed.line(),
                f"the router adds {added:.2f} ms at p50",
            ]
        )


def bench_router(
    requests: int = 5000,
    concurrency: int = 16,
    weight: int = 50,
    rounds: int = 3,
) -> RouterBench:
    """Measure the backend directly and through a router, round by round.

    Direct and routed runs alternate, so a neighbour's load on the machine
    hits both rows alike; each figure is the median over the rounds.
    """
    backend_command = [sys.executable, "-m", "migrate.router.bench",
                       "--serve-backend"]
    with tempfile.TemporaryDirectory() as directory, _process(
        backend_command
    ) as backend:
        store = StateStore(Path(directory) / "router.db")
        store.set_backend("monolith", backend)
        store.set_backend("billing", backend)
        store.register_routes("billing", "billing", _ROUTES)
        store.set_weight("billing", weight, "bench", "measure the router")
        router_command = [sys.executable, "-m", "migrate.router", "--state",
                          store.path, "--port", "0", "--log-level", "WARNING"]
        with _process(router_command) as router:
            direct: list[Measurement] = []
            routed: list[Measurement] = []
            for _ in range(rounds):
                direct.append(
                    asyncio.run(_load("direct", backend, requests, concurrency))
                )
                routed.append(
                    asyncio.run(_load("routed", router, requests, concurrency))
                )

    return RouterBench(
        _median(direct), _median(routed), concurrency, weight, rounds
    )


def _median(measurements: list[Measurement]) -> Measurement:
    first = measurements[0]
    return Measurement(
        first.label,
        first.requests,
        statistics.median(m.seconds for m in measurements),
        statistics.median(m.p50_ms for m in measurements),
        statistics.median(m.p99_ms for m in measurements),
    )


async def _load(label: str, url: str, requests: int, concurrency: int) -> Measurement:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm the connections and the router's own pool first.
        await _run(session, url, concurrency * 20, concurrency)
        started = time.perf_counter()
        latencies = await _run(session, url, requests, concurrency)
        seconds = time.perf_counter() - started

    cuts = statistics.quantiles(latencies, n=100)
    return Measurement(label, requests, seconds, cuts[49] * 1000, cuts[98] * 1000)


async def _run(
    session: aiohttp.ClientSession, url: str, requests: int, concurrency: int
) -> list[float]:
    latencies: list[float] = []
    numbers = iter(range(requests))

    async def worker() -> None:
        for number in numbers:
            started = time.perf_counter()
            async with session.get(f"{url}/invoices/{number}") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"bench request answered {response.status}")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


@contextmanager
def _process(command: list[str]) -> Iterator[str]:
    """A server process that prints `... http://host:port` when ready."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "http://" not in line:
            raise RuntimeError(f"{command[2]} did not start: {line!r}")
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _serve_backend() -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=_BODY, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"backend listening on http://{host}:{port}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate.router.bench")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--weight", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-backend", action="store_true",
                        help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.serve_backend:
        asyncio.run(_serve_backend())
        return 0

    result = bench_router(
        arguments.requests,
        arguments.concurrency,
        arguments.weight,
        arguments.rounds,
    )
    print(result.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
