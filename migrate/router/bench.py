"""What the router costs per request, measured on the user's own machine.

`bench_router()` starts, each in its own process, a fast backend (a canned
JSON answer on asyncio protocols) and in front of it, one at a time:

- `direct`: nothing; the load goes to the backend itself;
- `router`: the kit's router with every feature on: a keyed read route at
  weight 50 (routing and sticky bucketing on every request), its metrics
  and SLO window, and X-Ray tracing at the production sampling rate (the
  first request each second plus 5 %, segments sent over UDP to a sink);
- `bare`: a pass-through proxy on the same server stack (the same wire
  layer, pools and header hygiene, none of the routing): the difference
  to `router` is what the features cost;
- `nginx`: nginx with one worker as an equivalent proxy (keep-alive pool,
  X-Forwarded-* headers, no access log), when nginx is installed: the
  limit to approach. Without nginx the row is left out and the report
  says so.

Each row is measured twice: its peak rate (`concurrency` keep-alive
connections, each sending its next request as soon as an answer comes)
and its latency at a fixed rate (`rate` requests per second, sent on
schedule whatever the answers do, so a slow answer cannot hide the ones
behind it). The fixed-rate load always comes from the bench's own
generator; the peak load comes from `wrk` when it is installed (a C load
generator takes less of the machine's cores from the servers), else from
the bench's generator, and the report names which.

On a machine of two cores or more the proxy under test is pinned to a
core of its own and the backend and the load generator to the others, so
each row measures the proxy and not the scheduler's placement; and where
the user may (root, or a nice limit that allows it), every process of the
bench runs at a raised priority (nice -10), so that other work on a shared
machine takes less of the measured cores (`--no-pin` turns both off; the
report says which held). Every server runs for the whole run and the rows are
measured in turn, five rounds by default: in each round every row's peak,
the router's and the bare proxy's back to back (in turns, which goes
first), then every row's latency. Each row's figure is the median of its
rounds; each gate is the median of the comparisons made within a round,
so a burst of a neighbour's load on a shared machine spoils one round,
not the verdict. Compare rows of one run, not figures across machines.

`python -m migrate.router.bench [--seconds S] [--rate R] [--json]` or
`migrate bench router` prints the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httptools

from migrate.router.state import StateStore

_ROUTES = [("GET", "/invoices/<int:invoice_id>", "invoice_id")]
_BODY = b'{"invoice_id": 1, "total": "12.50", "status": "issued"}'
_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)
_KEYS = 4096
# The router's targets: what it may add at the fixed rate, and the
# share of the bare proxy's peak it must keep.
ADDED_P50_MS = 1.0
ADDED_P99_MS = 3.0
PEAK_SHARE = 0.8
# The bench's processes run at this nice value where the user may set it.
_NICE = -10


@dataclasses.dataclass(frozen=True)
class Row:
    """One way of serving the load: its peak and its latency at a fixed rate."""

    label: str
    peak_per_second: float
    peak_p50_ms: float
    peak_p99_ms: float
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    # The proxy's own CPU time (user and system) per request at its peak;
    # None for rows without a proxy process of ours to read it from.
    cpu_us_per_request: float | None = None

    def line(self) -> str:
        cpu = (f", {self.cpu_us_per_request:5.1f} us of CPU a request"
               if self.cpu_us_per_request is not None else "")
        return (
            f"{self.label:<7} peak {self.peak_per_second:>8.0f} req/s "
            f"(p50 {self.peak_p50_ms:6.2f} ms, p99 {self.peak_p99_ms:6.2f} ms{cpu})   "
            f"at {self.rate:g} req/s: p50 {self.p50_ms:5.2f} ms, "
            f"p99 {self.p99_ms:5.2f} ms"
        )


@dataclasses.dataclass(frozen=True)
class Gate:
    """One of the router's targets: the measured value against its limit.

    `shortfall` is how far the value misses the limit, in `unit` (ms for
    the latency gates, percentage points for the share of the bare
    proxy's peak); 0 when the gate holds."""

    name: str
    value: float
    limit: float
    ok: bool
    text: str
    shortfall: float = 0.0
    unit: str = "ms"


@dataclasses.dataclass(frozen=True)
class RouterBench:
    rows: tuple[Row, ...]
    seconds: float
    rate: float
    concurrency: int
    peak_generator: str
    nginx: str  # the nginx version used, or why there is no nginx row
    machine: dict[str, Any]
    rounds: int = 1
    placement: str = "processes not pinned to cores"
    # Each round's rows, when there were several; the gates compare them.
    per_round: tuple[tuple[Row, ...], ...] = ()

    def row(self, label: str) -> Row | None:
        return next((r for r in self.rows if r.label == label), None)

    def _within_rounds(self, compare: Any) -> float:
        """The median over the rounds of `compare(direct, router, bare)`."""
        rounds = self.per_round or (self.rows,)
        found = []
        for rows in rounds:
            by_label = {row.label: row for row in rows}
            found.append(compare(by_label["direct"], by_label["router"],
                                 by_label["bare"]))
        return statistics.median(found)

    def gates(self) -> list[Gate]:
        added_p50 = self._within_rounds(lambda d, r, b: r.p50_ms - d.p50_ms)
        added_p99 = self._within_rounds(lambda d, r, b: r.p99_ms - d.p99_ms)
        share = self._within_rounds(
            lambda d, r, b: r.peak_per_second / b.peak_per_second
        )
        return [
            _gate("added p50 at rate", added_p50, ADDED_P50_MS,
                  added_p50 - ADDED_P50_MS, "ms",
                  f"the router adds {added_p50:.2f} ms at p50 at {self.rate:g} req/s "
                  f"(limit {ADDED_P50_MS:g} ms)"),
            _gate("added p99 at rate", added_p99, ADDED_P99_MS,
                  added_p99 - ADDED_P99_MS, "ms",
                  f"the router adds {added_p99:.2f} ms at p99 at {self.rate:g} req/s "
                  f"(limit {ADDED_P99_MS:g} ms)"),
            _gate("peak share of bare", share, PEAK_SHARE,
                  (PEAK_SHARE - share) * 100, "percentage points",
                  f"with every feature on the router keeps {share:.1%} of the bare "
                  f"pass-through's peak (at least {PEAK_SHARE:.0%})"),
        ]

    @property
    def ok(self) -> bool:
        return all(gate.ok for gate in self.gates())

    def cpu_share(self) -> float | None:
        """The bare proxy's CPU time per request over the router's, median
        within rounds: the share of the bare proxy's peak the router would
        keep with a core to itself, which a neighbour's load moves less
        than it moves either peak. Not a gate; None without the figures."""
        rounds = self.per_round or (self.rows,)
        found = []
        for rows in rounds:
            by_label = {row.label: row for row in rows}
            router = by_label["router"].cpu_us_per_request
            bare = by_label["bare"].cpu_us_per_request
            if router and bare:
                found.append(bare / router)
        return round(statistics.median(found), 4) if found else None

    def nginx_share(self) -> float | None:
        nginx, router = self.row("nginx"), self.row("router")
        if nginx is None or router is None:
            return None

        return router.peak_per_second / nginx.peak_per_second

    def report(self) -> str:
        lines = [
            f"router bench: medians of {self.rounds} rounds of {self.seconds:g} s "
            f"per measurement, peak with {self.concurrency} connections "
            f"({self.peak_generator}), latency at {self.rate:g} req/s; "
            f"{self.machine['cores']} cores, {self.machine['processor']}; "
            f"{self.placement}",
            *(row.line() for row in self.rows),
            "gates: medians of the comparisons within each round",
        ]
        for gate in self.gates():
            verdict = "ok" if gate.ok else "SHORT"
            lines.append(f"  [{verdict}] {gate.text}")
        cpu = self.cpu_share()
        if cpu is not None:
            lines.append(
                f"  per request the router uses {1 / cpu:.2f} times the bare "
                f"proxy's CPU time: with a core to itself it would keep {cpu:.1%} "
                "of the bare proxy's peak (not a gate)"
            )
        share = self.nginx_share()
        if share is None:
            lines.append(f"  nginx: {self.nginx}")
        else:
            lines.append(
                f"  the router's peak is {share:.0%} of nginx's ({self.nginx}, one "
                "worker): the limit to approach, not a gate"
            )
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": [dataclasses.asdict(row) for row in self.rows],
            "seconds": self.seconds,
            "rounds": self.rounds,
            "placement": self.placement,
            "rate": self.rate,
            "concurrency": self.concurrency,
            "peak_generator": self.peak_generator,
            "nginx": self.nginx,
            "nginx_share": self.nginx_share(),
            "cpu_share": self.cpu_share(),
            "gates": [dataclasses.asdict(gate) for gate in self.gates()],
            "per_round": [
                [dataclasses.asdict(row) for row in rows] for rows in self.per_round
            ],
            "ok": self.ok,
            "machine": self.machine,
        }


def _gate(name: str, value: float, limit: float, missed_by: float, unit: str,
          text: str) -> Gate:
    """A gate that holds unless `missed_by` (in `unit`) is above 0."""
    ok = missed_by <= 0
    shortfall = 0.0 if ok else round(missed_by, 2)
    if not ok:
        text += f": short by {shortfall:.2f} {unit}"
    return Gate(name, round(value, 4), limit, ok, text, shortfall, unit)


def bench_router(
    seconds: float = 3.0,
    rate: float = 500.0,
    concurrency: int = 32,
    *,
    rounds: int = 5,
    nginx: bool = True,
    generator: str = "auto",
    profile: str | None = None,
    pin: bool = True,
) -> RouterBench:
    """Measure the four rows in one run.

    Every server runs for the whole run and the rows are measured in turn,
    `rounds` times over; each figure is the median of its rounds, and each
    gate the median of its rounds' comparisons, so a neighbour's load on
    the machine spoils a round, not the run.
    """
    wrk = shutil.which("wrk") if generator in ("auto", "wrk") else None
    if generator == "wrk" and wrk is None:
        raise FileNotFoundError("wrk is not installed; use generator 'python'")

    nginx_binary = _nginx() if nginx else None
    with contextlib.ExitStack() as running:
        priority = running.enter_context(_raised_priority(pin))
        folder = Path(running.enter_context(
            tempfile.TemporaryDirectory(prefix="router-bench-")
        ))
        cores = _cores(pin)
        backend, sink, _ = running.enter_context(_process(
            [sys.executable, "-m", "migrate.router.bench", "--serve-backend"],
            cores.load,
        ))
        store = StateStore(folder / "router.db")
        store.set_backend("monolith", backend)
        store.set_backend("billing", backend)
        store.register_routes("billing", "billing", _ROUTES)
        store.set_weight("billing", 50, "bench", "measure the router")
        router_command = [
            sys.executable, "-m", "migrate.router", "--state", store.path,
            "--port", "0", "--log-level", "WARNING", "--trace",
            "--trace-address", sink,
        ]
        if profile:
            router_command[1:1] = ["-m", "cProfile", "-o", profile]
        commands: list[tuple[str, list[str]]] = [
            ("router", router_command),
            ("bare", [sys.executable, "-m", "migrate.router.bench",
                      "--serve-bare", backend]),
        ]
        nginx_note = "not installed: no nginx row"
        if nginx_binary is not None:
            nginx_note = _nginx_version(nginx_binary)
            commands.append(("nginx", _nginx_command(nginx_binary, folder, backend)))
        elif not nginx:
            nginx_note = "left out"

        urls = {"direct": backend}
        pids: dict[str, int | None] = {"direct": None, "nginx": None}
        for label, command in commands:
            url, _, pid = running.enter_context(_process(command, cores.proxy))
            urls[label] = url
            # nginx's worker is not the process started here: no CPU figure.
            pids.setdefault(label, pid)
        for url in urls.values():
            # Warm the proxies' pools and the interpreters' caches first.
            _generate(url, "peak", min(1.0, seconds), concurrency, cores.load)
        measured: dict[str, list[Row]] = {label: [] for label in urls}
        per_round: list[tuple[Row, ...]] = []
        for turn in range(rounds):
            order = _order(list(urls), turn)
            # Every row's peak first, then every row's latency: the router's
            # and the bare proxy's peaks are measured back to back, so a
            # neighbour's burst of load meets both or neither.
            peaks = {
                label: _peak_of(urls[label], seconds, concurrency, wrk, cores.load,
                                pids[label])
                for label in order
            }
            found: dict[str, Row] = {}
            for label in order:
                fixed = _generate(urls[label], "rate", seconds, rate, cores.load)
                found[label] = _row(label, rate, *peaks[label], fixed)
                measured[label].append(found[label])
            per_round.append(tuple(found[label] for label in urls))

    rows = tuple(_median(found) for found in measured.values())
    return RouterBench(
        rows, seconds, rate, concurrency,
        "wrk" if wrk else "the bench's own generator", nginx_note, _machine(),
        rounds, f"{cores.text}; {priority}", tuple(per_round),
    )


@contextmanager
def _raised_priority(wanted: bool) -> Iterator[str]:
    """Run this process, and so every process it starts, at nice -10 if
    the user may; says which priority the bench ran at."""
    if not wanted:
        yield "normal priority"
        return

    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(before, _NICE))
    except PermissionError:
        yield "normal priority (raising it is not permitted here)"
        return

    try:
        yield f"priority raised (nice {min(before, _NICE)})"
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


def _order(labels: list[str], turn: int) -> list[str]:
    """The rows of one round: the router and the bare proxy next to each
    other, taking turns at going first, so neither always meets the
    machine as the other left it."""
    if turn % 2 == 0:
        return labels

    swapped = list(labels)
    first, second = swapped.index("router"), swapped.index("bare")
    swapped[first], swapped[second] = swapped[second], swapped[first]
    return swapped


@dataclasses.dataclass(frozen=True)
class _Cores:
    proxy: frozenset[int] | None
    load: frozenset[int] | None
    text: str


def _cores(pin: bool) -> _Cores:
    """The proxy under test gets a core of its own; the backend and the
    load generator share the others, so a proxy's figure is its own cost
    and not its neighbours' scheduling."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else []
    if not pin or len(available) < 2:
        return _Cores(None, None, "processes not pinned to cores")

    proxy, load = frozenset(available[:1]), frozenset(available[1:])
    return _Cores(
        proxy, load,
        f"proxy on core {available[0]}, backend and load generator on "
        f"{', '.join(map(str, sorted(load)))}",
    )


def _pinned(cores: frozenset[int] | None) -> Any:
    if cores is None:
        return None

    return lambda: os.sched_setaffinity(0, cores)


def _median(rows: list[Row]) -> Row:
    def middle(field: str) -> float:
        return round(statistics.median(getattr(r, field) for r in rows), 3)

    cpu = [r.cpu_us_per_request for r in rows if r.cpu_us_per_request is not None]
    return Row(
        rows[0].label, middle("peak_per_second"), middle("peak_p50_ms"),
        middle("peak_p99_ms"), rows[0].rate, middle("p50_ms"), middle("p99_ms"),
        sum(r.errors for r in rows),
        round(statistics.median(cpu), 2) if cpu else None,
    )


def _peak_of(
    url: str, seconds: float, concurrency: int, wrk: str | None,
    cores: frozenset[int] | None, pid: int | None,
) -> tuple[dict[str, Any], float | None]:
    """A row's peak, and the proxy's CPU time a request while it lasted."""
    used = _cpu_seconds(pid)
    if wrk is not None:
        peak = _wrk(wrk, url, seconds, concurrency, cores)
    else:
        peak = _generate(url, "peak", seconds, concurrency, cores)
    used = _cpu_seconds(pid) - used
    cpu = (round(used / peak["requests"] * 1e6, 2)
           if pid is not None and peak["requests"] else None)
    return peak, cpu


def _row(label: str, rate: float, peak: dict[str, Any], cpu: float | None,
         fixed: dict[str, Any]) -> Row:
    return Row(
        label,
        round(peak["per_second"], 1),
        round(peak["p50_ms"], 3),
        round(peak["p99_ms"], 3),
        rate,
        round(fixed["p50_ms"], 3),
        round(fixed["p99_ms"], 3),
        int(peak["errors"] + fixed["errors"]),
        cpu,
    )


def _cpu_seconds(pid: int | None) -> float:
    """User and system CPU time of a process so far; 0 where unknown."""
    if pid is None:
        return 0.0

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0

    # utime and stime, the 14th and 15th fields, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _generate(
    url: str, mode: str, seconds: float, amount: float,
    cores: frozenset[int] | None = None,
) -> dict[str, Any]:
    found = subprocess.run(
        [sys.executable, "-m", "migrate.router.bench", "--generate", url,
         "--mode", mode, "--for", str(seconds), "--amount", str(amount)],
        capture_output=True, text=True, timeout=seconds * 3 + 60, check=True,
        preexec_fn=_pinned(cores),
    )
    result: dict[str, Any] = json.loads(found.stdout)
    return result


_WRK_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_WRK_COUNT = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
_WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)")


# wrk asks for the same keys as the bench's own generator, in turn: with a
# single key every read of a split weight would go to one side.
_WRK_SCRIPT = f"""
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/invoices/" .. (10000 + n % {_KEYS}))
end
"""


def _wrk(
    wrk: str, url: str, seconds: float, concurrency: int,
    cores: frozenset[int] | None,
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_WRK_SCRIPT)
        script.flush()
        found = subprocess.run(
            [wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
             "--latency", "-s", script.name, url],
            capture_output=True, text=True, timeout=seconds * 3 + 60, check=True,
            preexec_fn=_pinned(cores),
        )
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = {
        percent: float(value) * scale[unit]
        for percent, value, unit in _WRK_LATENCY.findall(found.stdout)
    }
    rate = _WRK_RATE.search(found.stdout)
    if rate is None or "50" not in latency:
        raise RuntimeError(f"cannot read wrk's report: {found.stdout!r}")

    errors = 0
    for non_2xx, socket_errors in _WRK_ERRORS.findall(found.stdout):
        if non_2xx:
            errors += int(non_2xx)
        if socket_errors:
            errors += sum(int(n) for n in re.findall(r"\d+", socket_errors))
    count = _WRK_COUNT.search(found.stdout)
    return {
        "requests": int(count.group(1)) if count else 0,
        "per_second": float(rate.group(1)),
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "errors": errors,
    }


# The processes ------------------------------------------------------------


@contextmanager
def _process(
    command: list[str], cores: frozenset[int] | None = None
) -> Iterator[tuple[str, str, int]]:
    """A server that prints `... http://host:port [extra]` when ready:
    its URL, the extra word, and its process id."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                               preexec_fn=_pinned(cores))
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "http://" not in line:
            raise RuntimeError(f"{' '.join(command[:4])} did not start: {line!r}")
        words = line.split()
        url = next(w for w in words if w.startswith("http://"))
        extra = words[-1] if words[-1] != url else ""
        yield url, extra, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()),
        None,
    )


def _nginx_version(binary: str) -> str:
    found = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
    return (found.stderr or found.stdout).strip().split(":")[-1].strip()


def _nginx_command(binary: str, folder: Path, backend: str) -> list[str]:
    """nginx as a proxy equivalent to the router; a wrapper prints its URL."""
    prefix = folder / "nginx"
    prefix.mkdir()
    port = _free_port()
    upstream = backend.removeprefix("http://")
    (prefix / "nginx.conf").write_text(f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream backend {{ server {upstream}; keepalive 512; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        client_max_body_size 10m;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_connect_timeout 10s;
            proxy_read_timeout 10s;
            add_header X-Migrate-Backend monolith always;
        }}
    }}
}}
""")
    return [sys.executable, "-m", "migrate.router.bench", "--run-nginx", binary,
            str(prefix), str(port)]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _machine() -> dict[str, Any]:
    processor = "unknown processor"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "processor": processor,
        "python": sys.version.split()[0],
        "platform": sys.platform,
    }


# Servers and the load generator, run as subprocesses ----------------------


class _Backend(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self) -> None:
        self.transport.write(_ANSWER)  # type: ignore[attr-defined]


class _Sink(asyncio.DatagramProtocol):
    """Takes the router's trace segments and drops them, as a daemon would."""

    received = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        _Sink.received += 1


async def _serve_backend() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Backend, "127.0.0.1", 0, backlog=4096)
    sink, _ = await loop.create_datagram_endpoint(_Sink, ("127.0.0.1", 0))
    host, port = server.sockets[0].getsockname()[:2]
    sink_host, sink_port = sink.get_extra_info("sockname")[:2]
    print(f"backend listening on http://{host}:{port} {sink_host}:{sink_port}",
          flush=True)
    await asyncio.Event().wait()


async def _serve_bare(backend: str) -> None:
    from migrate.router.http1 import (
        Answer,
        Request,
        Upstream,
        serve_http,
        settle_memory,
    )
    from migrate.router.proxy import request_head, response_headers

    upstream = Upstream("monolith", backend)

    async def handle(request: Request) -> Answer:
        head, _ = request_head(request)
        data = head + request.body if request.body else head
        answer = await upstream.exchange(
            data, bodiless=request.method == "HEAD", retry_stale=True
        )
        body = answer.body_now()
        if body is None:
            body = await answer.read()
        return Answer(answer.status, response_headers(answer.headers, "monolith"),
                      body, reason=answer.reason)

    server = await serve_http(handle, "127.0.0.1", 0, max_body=10 * 1024 * 1024)
    settle_memory()
    host, port = server.sockets[0].getsockname()[:2]
    print(f"bare proxy listening on http://{host}:{port}", flush=True)
    await asyncio.Event().wait()


def _run_nginx(binary: str, prefix: str, port: int) -> int:
    process = subprocess.Popen(
        [binary, "-p", prefix, "-c", f"{prefix}/nginx.conf", "-e", "stderr",
         "-g", "daemon off;"],
    )
    deadline = time.monotonic() + 15
    import socket

    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    print(f"nginx listening on http://127.0.0.1:{port}", flush=True)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    return process.wait()


class _Client(asyncio.Protocol):
    """One keep-alive connection of the load generator."""

    def __init__(self) -> None:
        self.waiter: asyncio.Future[int] | None = None
        self.parser = httptools.HttpResponseParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def send(self, request: bytes) -> asyncio.Future[int]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)  # type: ignore[attr-defined]
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("connection lost"))


def _requests(host: str) -> list[bytes]:
    return [
        b"GET /invoices/%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (10000 + n, host.encode())
        for n in range(_KEYS)
    ]


async def _connect(url: str, count: int) -> list[_Client]:
    loop = asyncio.get_running_loop()
    host, port = url.removeprefix("http://").rsplit(":", 1)
    clients = []
    for _ in range(count):
        _, client = await loop.create_connection(_Client, host, int(port))
        clients.append(client)
    return clients


async def _peak(url: str, seconds: float, concurrency: int) -> dict[str, Any]:
    clients = await _connect(url, int(concurrency))
    requests = _requests(url.removeprefix("http://"))
    latencies: list[float] = []
    errors = 0
    # uvloop's clock counts whole milliseconds; latencies need finer.
    clock = time.perf_counter
    stop = clock() + seconds

    async def run(client: _Client, offset: int) -> None:
        nonlocal errors
        n = offset
        while clock() < stop:
            started = clock()
            status = await client.send(requests[n % _KEYS])
            latencies.append(clock() - started)
            if status != 200:
                errors += 1
            n += concurrency

    began = clock()
    await asyncio.gather(*(run(c, i) for i, c in enumerate(clients)))
    elapsed = clock() - began
    return _summary(latencies, elapsed, errors)


async def _fixed_rate(url: str, seconds: float, rate: float) -> dict[str, Any]:
    clients = await _connect(url, 32)
    idle = list(clients)
    requests = _requests(url.removeprefix("http://"))
    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter
    total = int(seconds * rate)
    began = clock() + 0.05
    pending: set[asyncio.Task[None]] = set()

    async def one(n: int, due: float) -> None:
        nonlocal errors
        while not idle:
            await asyncio.sleep(0)
        client = idle.pop()
        try:
            status = await client.send(requests[n % _KEYS])
        except ConnectionError:
            errors += 1
            return
        # From when it was due, not when it went out: a queue counts.
        latencies.append(clock() - due)
        idle.append(client)
        if status != 200:
            errors += 1

    for n in range(total):
        due = began + n / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(n, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    return _summary(latencies, total / rate, errors)


def _summary(latencies: list[float], seconds: float, errors: int) -> dict[str, Any]:
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    return {
        "requests": len(latencies),
        "per_second": len(latencies) / seconds,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "errors": errors,
    }


def _loop_runner() -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run

    return uvloop.run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate.router.bench")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=5,
                        help="measurements of each row; figures are medians")
    parser.add_argument("--rate", type=float, default=500.0,
                        help="requests per second for the latency measurement")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="connections for the peak measurement")
    parser.add_argument("--no-nginx", action="store_true",
                        help="leave nginx out even when it is installed")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"),
                        default="auto", help="what generates the peak load")
    parser.add_argument("--profile", help="write the router's cProfile data here")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the scheduler place the processes on cores, "
                             "at normal priority")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-backend", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", help=argparse.SUPPRESS)
    parser.add_argument("--run-nginx", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--for", dest="duration", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--amount", type=float, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    run = _loop_runner()
    if arguments.serve_backend:
        run(_serve_backend())
        return 0

    if arguments.serve_bare:
        run(_serve_bare(arguments.serve_bare))
        return 0

    if arguments.run_nginx:
        binary, prefix, port = arguments.run_nginx
        return _run_nginx(binary, prefix, int(port))

    if arguments.generate:
        if arguments.mode == "peak":
            found = run(_peak(arguments.generate, arguments.duration,
                              int(arguments.amount)))
        else:
            found = run(_fixed_rate(arguments.generate, arguments.duration,
                                    arguments.amount))
        print(json.dumps(found))
        return 0

    result = bench_router(
        arguments.seconds, arguments.rate, arguments.concurrency,
        rounds=arguments.rounds, nginx=not arguments.no_nginx,
        generator=arguments.generator, profile=arguments.profile,
        pin=not arguments.no_pin,
    )
    print(json.dumps(result.as_json(), indent=2) if arguments.json
          else result.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
