"""Prometheus metrics for every process of the system: the catalogue, and
how a process exposes them.

`CATALOGUE` names every metric the kit emits, with its type, labels, help
and the process that emits it; nothing outside it is emitted, so the
Grafana dashboard, the SLO rules and the docs all read from one list.
Names follow Prometheus' conventions (`_total` for counters, base units:
seconds, events, messages).

How each process exposes them:

- the router on its admin listener (`GET /metrics`, with the admin token),
  from its counters, read only when scraped (`migrate.router.metrics`);
- the monolith on its HTTP port (`GET /metrics`);
- each Nameko service through an `@http` entrypoint (`GET /metrics`);
- the trace collector on its HTTP port;
- every other process (relays, followers, Lambda runtimes, the system
  exporter) through prometheus_client's own server on a free loopback port,
  started by `serve()`, which records where in `<MIGRATE_METRICS_DIR>/
  <process>.metrics` (JSON: url, process, pid), so `migrate up` can list
  the scrape targets.

With `MIGRATE_METRICS_EMF=on` a process also prints its `migrate_*`
metrics every `MIGRATE_METRICS_EMF_SECONDS` (default 60) as CloudWatch
embedded metric format lines into its log stream (stdout), one line per
label set: counters and histogram counts and sums as the increase since the
previous line, gauges as they are. CloudWatch turns such lines into metrics
without an agent or an API call. Histogram buckets are not sent: EMF has
no cumulative buckets, and CloudWatch computes percentiles itself from the
values it is given.

What it does not do: push to a Pushgateway, or keep anything across a
restart (counters start at zero, as Prometheus expects).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TextIO

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from migrate.errors import ConfigurationError

_log = logging.getLogger(__name__)

Kind = Literal["counter", "gauge", "histogram"]
# The text format every Prometheus 2 reads; the names here need nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EMF_NAMESPACE = "Migrate"
EMF_SECONDS = 60.0
# Seconds: from a cached read (0.5 ms) to a slow handler (10 s).
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)
BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)


@dataclasses.dataclass(frozen=True)
class Spec:
    """One metric of the catalogue, as exposed."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str
    process: str

    @property
    def base(self) -> str:
        """The name without `_total`, as prometheus_client takes it."""
        return self.name.removesuffix("_total")

    def series(self) -> tuple[str, ...]:
        """The sample names a scrape carries for this metric."""
        if self.kind == "histogram":
            return tuple(f"{self.name}_{s}" for s in ("bucket", "sum", "count"))
        return (self.name,)


def _spec(name: str, kind: Kind, labels: str, help: str, process: str) -> Spec:
    return Spec(name, kind, tuple(labels.split()), help, process)


CATALOGUE: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        # The router: its counters since start, read when scraped.
        _spec("migrate_router_requests_total", "counter", "context backend",
              "Requests answered, per route group (context) and backend "
              "(the router itself when it refused).", "router"),
        _spec("migrate_router_request_errors_total", "counter", "context backend",
              "Requests answered with a server error (5xx).", "router"),
        _spec("migrate_router_request_duration_seconds", "histogram",
              "context backend",
              "Seconds from a request's arrival to its answer.", "router"),
        _spec("migrate_router_backend_failures_total", "counter", "backend",
              "Calls to a backend that failed: unreachable, timed out, broke "
              "off, or answered 5xx.", "router"),
        _spec("migrate_router_fallbacks_total", "counter", "context",
              "Reads meant for a service that the monolith answered instead.",
              "router"),
        _spec("migrate_router_replica_misses_total", "counter", "context",
              "Reads a replica did not find (404) and the writer was asked.",
              "router"),
        _spec("migrate_router_shadow_comparisons_total", "counter",
              "route outcome",
              "Shadow copies per route, by outcome (same, different, ignored, "
              "candidate_error, dropped, skipped).", "router"),
        _spec("migrate_router_refused_total", "counter", "code",
              "Requests the router answered itself, by error code.", "router"),
        _spec("migrate_router_held_writes_total", "counter", "context",
              "Writes held while their context's writer moved.", "router"),
        _spec("migrate_router_rollbacks_total", "counter", "context",
              "Automatic rollbacks on an SLO breach.", "router"),
        _spec("migrate_router_breaker_state", "gauge", "backend state",
              "1 for the state a backend's circuit breaker is in (closed, "
              "open, half-open), 0 for the others.", "router"),
        _spec("migrate_router_read_weight", "gauge", "context",
              "Percent of a context's reads routed to its service.", "router"),
        _spec("migrate_router_route_weight", "gauge", "context route",
              "Percent of one route's reads routed to the service, where the "
              "route has a weight of its own.", "router"),
        _spec("migrate_router_writer", "gauge", "context backend",
              "1 for the backend that writes a context.", "router"),
        _spec("migrate_router_slo_verdict", "gauge", "context verdict",
              "1 for the SLO guard's current verdict on a context (ok, breach, "
              "inconclusive).", "router"),
        _spec("migrate_router_table_revision", "gauge", "",
              "The routing table's revision the router routes by.", "router"),
        _spec("migrate_router_shadow_queue_depth", "gauge", "",
              "Shadow copies waiting to be sent.", "router"),
        # HTTP hosts of a context: the monolith and each service.
        _spec("migrate_http_requests_total", "counter", "context route code",
              "Requests a host answered, per context, route and status code "
              "(errors are code 5xx).", "monolith, services"),
        _spec("migrate_http_request_duration_seconds", "histogram",
              "context route",
              "Seconds a host took to answer a request.", "monolith, services"),
        _spec("migrate_outbox_backlog_events", "gauge", "database context",
              "Outbox rows not yet published, per database and context.",
              "monolith, exporter"),
        # Message consumers: services, followers.
        _spec("migrate_messages_total", "counter", "queue outcome",
              "Messages consumed per queue, by outcome (handled, duplicate, "
              "failed, malformed).", "services, followers"),
        _spec("migrate_message_duration_seconds", "histogram", "queue",
              "Seconds a handler took on one message.", "services, followers"),
        # Outbox relays.
        _spec("migrate_relay_published_total", "counter", "context",
              "Outbox events published to SNS.", "relays"),
        _spec("migrate_relay_failures_total", "counter", "context",
              "Relay rounds that failed for a context.", "relays"),
        _spec("migrate_relay_backlog_events", "gauge", "context",
              "Outbox rows this relay has yet to publish.", "relays"),
        # Lambda runtimes.
        _spec("migrate_lambda_invocations_total", "counter", "function",
              "Invocations of a function.", "Lambda runtimes"),
        _spec("migrate_lambda_errors_total", "counter", "function",
              "Invocations that failed their whole batch (raised, timed out, "
              "or answered wrongly).", "Lambda runtimes"),
        _spec("migrate_lambda_duration_seconds", "histogram", "function",
              "Seconds an invocation took.", "Lambda runtimes"),
        _spec("migrate_lambda_batch_size_messages", "histogram", "function",
              "Messages passed to one invocation.", "Lambda runtimes"),
        _spec("migrate_lambda_items_failed_total", "counter", "function",
              "Messages a function reported failed (batchItemFailures).",
              "Lambda runtimes"),
        _spec("migrate_lambda_cold_starts_total", "counter", "function",
              "Execution environments started.", "Lambda runtimes"),
        # The trace collector.
        _spec("migrate_collector_documents_total", "counter", "",
              "Segment documents received and stored.", "collector"),
        _spec("migrate_collector_dropped_total", "counter", "",
              "Datagrams that carried no segment document.", "collector"),
        # The system exporter: what no single process sees.
        _spec("migrate_queue_visible_messages", "gauge", "queue",
              "Messages waiting in a queue (ApproximateNumberOfMessages).",
              "exporter"),
        _spec("migrate_queue_in_flight_messages", "gauge", "queue",
              "Messages received and not yet deleted "
              "(ApproximateNumberOfMessagesNotVisible).", "exporter"),
        _spec("migrate_queue_dead_letter_messages", "gauge", "queue",
              "Messages in a queue's dead-letter queue.", "exporter"),
        _spec("migrate_sync_lag_events", "gauge", "context direction",
              "Events one side has yet to apply of the other's "
              "(to_service, to_monolith).", "exporter"),
        _spec("migrate_sync_lag_seconds", "gauge", "context direction",
              "Age of the oldest event not yet applied; 0 when none is "
              "pending.", "exporter"),
        _spec("migrate_exporter_errors_total", "counter", "source",
              "Readings the exporter could not take (a queue, a database).",
              "exporter"),
    )
}


def spec(name: str) -> Spec:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not in the catalogue") from None


# Metrics a process updates as it works -----------------------------------


class Instruments:
    """The catalogue's metrics created on one registry, on first use."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Any:
        found = self._made.get(name)
        if found is not None:
            return found

        with self._lock:
            found = self._made.get(name)
            if found is None:
                found = self._made[name] = _make(spec(name), self.registry)
        return found

    def exposition(self) -> bytes:
        """This registry's metrics and the process's own, in the text format."""
        return exposition(self.registry)


def _make(entry: Spec, registry: CollectorRegistry) -> Any:
    if entry.kind == "counter":
        return prometheus_client.Counter(
            entry.base, entry.help, entry.labels, registry=registry
        )
    if entry.kind == "gauge":
        return prometheus_client.Gauge(
            entry.name, entry.help, entry.labels, registry=registry
        )
    buckets = (
        BATCH_BUCKETS if entry.name.endswith("_messages") else DURATION_BUCKETS
    )
    return prometheus_client.Histogram(
        entry.name, entry.help, entry.labels, registry=registry, buckets=buckets
    )


# The metrics of this process that are not tied to one object; its
# process_* and python_* metrics come from prometheus_client's own registry.
process = Instruments()


def exposition(*registries: CollectorRegistry) -> bytes:
    """The text format of the process's metrics and `registries`'."""
    chosen = [prometheus_client.REGISTRY, process.registry]
    chosen += [r for r in registries if r not in chosen]
    return b"".join(prometheus_client.generate_latest(r) for r in chosen)


# Families a collector builds at scrape time --------------------------------


def family(name: str) -> Any:
    """An empty family of a catalogue metric, for a custom collector: a
    counter, gauge or histogram family, whose `add_metric` differ."""
    entry = spec(name)
    if entry.kind == "counter":
        return CounterMetricFamily(entry.base, entry.help, labels=entry.labels)
    if entry.kind == "gauge":
        return GaugeMetricFamily(entry.name, entry.help, labels=entry.labels)
    return HistogramMetricFamily(entry.name, entry.help, labels=entry.labels)


class Reading(Collector):
    """A collector whose families come from a function called at scrape."""

    def __init__(self, read: Any):
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield from self._read()


def registry_of(*collectors: Collector) -> CollectorRegistry:
    """A registry of collectors read at scrape time (not described at
    registration, so registering reads nothing)."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry


# Where a process without an HTTP server is scraped -------------------------

TARGETS_VARIABLE = "MIGRATE_METRICS_DIR"


def serve(name: str, *registries: CollectorRegistry) -> str | None:
    """Serve this process's metrics on a free loopback port and record the
    URL in `<MIGRATE_METRICS_DIR>/<name>.metrics`; the URL, or None when
    no folder is configured (the process then exposes nothing)."""
    folder = os.environ.get(TARGETS_VARIABLE)
    if not folder:
        return None

    merged = _Merged(registries)
    server, _ = prometheus_client.start_http_server(
        0, addr="127.0.0.1", registry=merged  # type: ignore[arg-type]
    )
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    record_target(Path(folder), name, url)
    _log.info("metrics of %s on %s", name, url)
    return url


def record_target(folder: Path, name: str, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.metrics"
    partial = path.with_suffix(".metrics.partial")
    partial.write_text(json.dumps({"url": url, "process": name, "pid": os.getpid()}))
    partial.replace(path)
    return path


class _Merged:
    """The default registry, the process's instruments and `extra`, as one
    registry for prometheus_client's server."""

    def __init__(self, extra: Iterable[CollectorRegistry]):
        self.extra = tuple(extra)

    def collect(self) -> Iterator[Metric]:
        for registry in (prometheus_client.REGISTRY, process.registry, *self.extra):
            yield from registry.collect()

    def restricted_registry(self, names: Iterable[str]) -> _Merged:
        return self


# CloudWatch embedded metric format ----------------------------------------


def emf_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    switch = env.get("MIGRATE_METRICS_EMF", "off").lower()
    if switch not in ("on", "off"):
        raise ConfigurationError(
            f"MIGRATE_METRICS_EMF={switch!r}: EMF lines are 'on' or 'off'"
        )
    return switch == "on"


def emf_interval(environ: Mapping[str, str] | None = None) -> float:
    env = os.environ if environ is None else environ
    text = env.get("MIGRATE_METRICS_EMF_SECONDS", str(EMF_SECONDS))
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0.1 <= seconds <= 3600:
        raise ConfigurationError(
            f"MIGRATE_METRICS_EMF_SECONDS={text!r}: lines go out every "
            "0.1-3600 seconds"
        )
    return seconds


def _unit(sample: str, kind: str) -> str:
    if "_seconds" in sample and not sample.endswith("_count"):
        return "Seconds"
    if kind == "counter" or sample.endswith("_count"):
        return "Count"
    return "None"


class EmfWriter:
    """Turns registries' `migrate_*` metrics into EMF lines; counters as
    the increase since the previous call."""

    def __init__(
        self,
        service: str,
        registries: Iterable[CollectorRegistry] = (),
        namespace: str = EMF_NAMESPACE,
    ):
        self.service = service
        self.registries = list(registries)
        self.namespace = namespace
        self._previous: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()

    def include(self, registry: CollectorRegistry) -> None:
        if registry not in self.registries:
            self.registries.append(registry)

    def documents(self, now: float | None = None) -> list[dict[str, Any]]:
        """One EMF document per label set, with at most 100 metrics each."""
        stamp = int((time.time() if now is None else now) * 1000)
        grouped: dict[tuple[tuple[str, str], ...], dict[str, tuple[float, str]]] = {}
        with self._lock:
            for registry in self.registries:
                for metric in registry.collect():
                    if not metric.name.startswith("migrate_"):
                        continue
                    for sample in metric.samples:
                        if sample.name.endswith(("_bucket", "_created")):
                            continue
                        labels = tuple(sorted(sample.labels.items()))
                        value = float(sample.value)
                        if metric.type in ("counter", "histogram"):
                            key = (sample.name, labels)
                            previous = self._previous.get(key, 0.0)
                            self._previous[key] = value
                            # A counter that went down restarted; all of it is new.
                            value = value - previous if value >= previous else value
                        grouped.setdefault(labels, {})[sample.name] = (
                            value, _unit(sample.name, metric.type)
                        )
        documents: list[dict[str, Any]] = []
        for labels, values in sorted(grouped.items()):
            names = sorted(values)
            for start in range(0, len(names), 100):
                chunk = names[start:start + 100]
                dimensions = dict(labels)
                dimensions["service"] = self.service
                document: dict[str, Any] = {
                    "_aws": {
                        "Timestamp": stamp,
                        "CloudWatchMetrics": [{
                            "Namespace": self.namespace,
                            "Dimensions": [sorted(dimensions)],
                            "Metrics": [
                                {"Name": n, "Unit": values[n][1]} for n in chunk
                            ],
                        }],
                    },
                    **dimensions,
                }
                for name in chunk:
                    document[name] = values[name][0]
                documents.append(document)
        return documents

    def write(self, stream: TextIO | None = None) -> int:
        """Print the lines; how many."""
        out = stream or sys.stdout
        found = self.documents()
        for document in found:
            out.write(json.dumps(document, separators=(",", ":")) + "\n")
        out.flush()
        return len(found)


class _State:
    service: str = ""
    emf: EmfWriter | None = None


_state = _State()


def configure(service: str, environ: Mapping[str, str] | None = None) -> None:
    """Metrics for this process as `service`: no `_created` series (they
    double every counter for no use here), and EMF lines when turned on."""
    prometheus_client.disable_created_metrics()
    _state.service = service
    if not emf_enabled(environ) or _state.emf is not None:
        return

    interval = emf_interval(environ)
    writer = _state.emf = EmfWriter(
        service,
        [process.registry],
        (environ or os.environ).get("MIGRATE_METRICS_EMF_NAMESPACE", EMF_NAMESPACE),
    )
    stop = threading.Event()

    def flush_forever() -> None:
        while not stop.wait(interval):
            try:
                writer.write()
            except Exception:  # noqa: BLE001 (metrics never stop a process)
                _log.exception("could not write EMF lines")

    threading.Thread(target=flush_forever, name="metrics-emf", daemon=True).start()
    def last_lines() -> None:
        stop.set()
        writer.write()

    atexit.register(last_lines)


def emit_also(registry: CollectorRegistry) -> None:
    """Include `registry` in this process's EMF lines, when they are on."""
    if _state.emf is not None:
        _state.emf.include(registry)


def service_name() -> str:
    return _state.service
