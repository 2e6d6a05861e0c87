"""Traces as a person reads them: the recent ones, one as a tree, a service map.

Reads the collector's store (see `migrate.observe.collector`), where every
document a process sent is a row: a segment, with its subsegments nested
under `subsegments`, or a subsegment sent on its own (`"type":
"subsegment"`, naming its `parent_id`). Both kinds are assembled into one
tree of `Span`s per trace: a span hangs below the span its `parent_id`
names, whichever process sent it, so the router's segment holds the
monolith's, the relay's SNS subsegment holds the service that consumed the
message, and so on. A span whose parent was never received (not sampled
there, or not arrived yet) starts a tree of its own.

A Lambda function fed by SQS starts a trace of its own that *links* to the
producer's trace (`links` in its segment, as on AWS); `trace()` names the
traces a trace links to and assembles the traces linked from it.

The service map counts, over the newest traces, every edge between two
nodes: a segment below another process's span (a call), a subsegment to a
remote resource (`SNS northwind-ordering`, `SQS ...`, a database, an HTTP
host), a consumer below the SNS or SQS subsegment that delivered its
message, and a `link` edge from a producer to each function invocation
linked to it. Each edge carries the calls, errors (4xx or an error flag),
faults (5xx or a fault flag) and the latency of the called side (mean and
p99, milliseconds).

What it does not do: write to the store, or ask AWS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import re
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from migrate.observe.errors import NoTraceStore, TraceIdInvalid, UnknownTrace

_log = logging.getLogger(__name__)

FUNCTION_ORIGIN = "AWS::Lambda::Function"
TRACE_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
SQL_WIDTH = 72
CLIENT = "client"


@dataclasses.dataclass
class Span:
    """A segment or a subsegment, with the spans that hang below it."""

    id: str
    trace_id: str
    name: str
    segment: bool
    parent_id: str | None
    start: float
    end: float | None
    namespace: str | None = None
    origin: str | None = None
    method: str | None = None
    url: str | None = None
    status: int | None = None
    sql: str | None = None
    database: str | None = None
    operation: str | None = None
    resource: str | None = None
    annotations: dict[str, Any] = dataclasses.field(default_factory=dict)
    fault: bool = False
    error: bool = False
    throttle: bool = False
    cause: str | None = None
    links: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    service: str = ""
    children: list[Span] = dataclasses.field(default_factory=list)

    @property
    def duration_ms(self) -> float | None:
        return None if self.end is None else (self.end - self.start) * 1000

    @property
    def function(self) -> bool:
        return self.origin == FUNCTION_ORIGIN

    @property
    def request(self) -> str | None:
        """`POST /orders`: the method and the path, for an HTTP span."""
        if not self.method:
            return None

        return f"{self.method} {_path(self.url or '')}".rstrip()

    @property
    def failed(self) -> bool:
        return self.fault or self.error or self.throttle

    def walk(self) -> Iterator[Span]:
        yield self
        for child in self.children:
            yield from child.walk()

    def as_dict(self, trace_start: float) -> dict[str, Any]:
        found: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "kind": "segment" if self.segment else "subsegment",
            "service": self.service,
            "offset_ms": round((self.start - trace_start) * 1000, 3),
            "duration_ms": _rounded(self.duration_ms),
        }
        for key in ("namespace", "origin", "method", "url", "status", "sql",
                    "database", "operation", "resource", "cause"):
            value = getattr(self, key)
            if value is not None:
                found[key] = value
        if self.annotations:
            found["annotations"] = self.annotations
        for flag in ("fault", "error", "throttle"):
            if getattr(self, flag):
                found[flag] = True
        if self.links:
            found["links"] = self.links
        found["children"] = [c.as_dict(trace_start) for c in self.children]
        return found


@dataclasses.dataclass
class TraceSummary:
    """One line of `migrate traces`."""

    trace_id: str
    start: float
    duration_ms: float | None
    root: str
    request: str
    status: int | None
    segments: int
    services: list[str]
    fault: bool
    error: bool
    in_progress: bool
    links_to: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Link:
    """A link from a function's span to the span of another trace."""

    from_span: str
    trace_id: str
    span_id: str | None
    target: str | None
    service: str | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Trace:
    """One trace as a tree, with its links either way."""

    summary: TraceSummary
    roots: list[Span]
    links: list[Link]
    linked_from: list[Trace]

    @property
    def trace_id(self) -> str:
        return self.summary.trace_id

    def spans(self) -> Iterator[Span]:
        for root in self.roots:
            yield from root.walk()

    def as_dict(self) -> dict[str, Any]:
        start = self.summary.start
        return {
            **self.summary.as_dict(),
            "spans": [r.as_dict(start) for r in self.roots],
            "links": [link.as_dict() for link in self.links],
            "linked_from": [t.as_dict() for t in self.linked_from],
        }


@dataclasses.dataclass
class Edge:
    source: str
    target: str
    kind: str
    calls: int = 0
    errors: int = 0
    faults: int = 0
    # Where the edge first shows in a trace, to list edges in the order
    # requests flow.
    first_offset: float = math.inf
    latencies: list[float] = dataclasses.field(default_factory=list, repr=False)

    @property
    def mean_ms(self) -> float | None:
        if not self.latencies:
            return None
        return sum(self.latencies) / len(self.latencies)

    @property
    def p99_ms(self) -> float | None:
        return percentile(self.latencies, 99)

    def add(self, span: Span, offset: float) -> None:
        self.calls += 1
        self.first_offset = min(self.first_offset, offset)
        status = span.status or 0
        if span.fault or status >= 500:
            self.faults += 1
        elif span.error or span.throttle or 400 <= status < 500:
            self.errors += 1
        if span.duration_ms is not None:
            self.latencies.append(span.duration_ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "kind": self.kind,
            "calls": self.calls,
            "errors": self.errors,
            "faults": self.faults,
            "mean_ms": _rounded(self.mean_ms),
            "p99_ms": _rounded(self.p99_ms),
        }


@dataclasses.dataclass
class ServiceMap:
    traces: int
    nodes: dict[str, str]
    edges: list[Edge]

    def as_dict(self) -> dict[str, Any]:
        return {
            "traces": self.traces,
            "nodes": [{"name": n, "kind": k} for n, k in sorted(self.nodes.items())],
            "edges": [e.as_dict() for e in self.edges],
        }


def percentile(values: Iterable[float], rank: float) -> float | None:
    """The nearest-rank percentile: the smallest value that at least
    `rank` % of the values do not exceed."""
    ordered = sorted(values)
    if not ordered:
        return None

    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[index]


# Reading the store --------------------------------------------------------


@contextlib.contextmanager
def _store(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.exists():
        raise NoTraceStore(path)

    connection = sqlite3.connect(str(path), timeout=10)
    try:
        connection.execute("SELECT 1 FROM documents LIMIT 1")
    except sqlite3.DatabaseError as error:
        connection.close()
        raise NoTraceStore(path, str(error)) from None
    try:
        yield connection
    finally:
        connection.close()


def _documents(db: sqlite3.Connection, trace_id: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT document FROM documents WHERE trace_id = ? ORDER BY start_time",
        (trace_id,),
    )
    return [json.loads(row[0]) for row in rows]


def _recent_ids(db: sqlite3.Connection, limit: int) -> list[str]:
    """The `limit` traces that started last, newest first."""
    found: dict[str, None] = {}
    for (trace_id,) in db.execute(
        "SELECT trace_id FROM documents ORDER BY start_time DESC"
    ):
        found.setdefault(trace_id, None)
        if len(found) >= limit:
            break
    return list(found)


def _linking_to(db: sqlite3.Connection, trace_id: str) -> list[str]:
    """The traces whose spans link to `trace_id`, oldest first."""
    rows = db.execute(
        "SELECT DISTINCT trace_id, start_time FROM documents "
        "WHERE instr(document, '\"links\"') > 0 AND instr(document, ?) > 0 "
        "AND trace_id != ? ORDER BY start_time",
        (f'"{trace_id}"', trace_id),
    )
    found: dict[str, None] = {}
    for linking, _ in rows:
        found.setdefault(linking, None)
    return list(found)


# Assembling spans ---------------------------------------------------------


def _span(
    document: dict[str, Any], trace_id: str, parent_id: str | None, segment: bool
) -> Span:
    http = document.get("http") or {}
    request = http.get("request") or {}
    response = http.get("response") or {}
    sql = document.get("sql") or {}
    aws = document.get("aws") or {}
    status = response.get("status")
    return Span(
        id=str(document["id"]),
        trace_id=trace_id,
        name=str(document.get("name", "")),
        segment=segment,
        parent_id=parent_id,
        start=float(document.get("start_time", 0.0)),
        end=_end(document),
        namespace=document.get("namespace"),
        origin=document.get("origin"),
        method=request.get("method"),
        url=request.get("url"),
        status=int(status) if isinstance(status, int | float) else None,
        sql=sql.get("sanitized_query"),
        database=(sql.get("database_type") if sql else None),
        operation=aws.get("operation"),
        resource=_resource(aws),
        annotations=dict(document.get("annotations") or {}),
        fault=bool(document.get("fault")),
        error=bool(document.get("error")),
        throttle=bool(document.get("throttle")),
        cause=_cause(document.get("cause")),
        links=list(document.get("links") or []),
    )


def _end(document: dict[str, Any]) -> float | None:
    if document.get("in_progress") or document.get("end_time") is None:
        return None
    return float(document["end_time"])


def _resource(aws: dict[str, Any]) -> str | None:
    """The topic, queue or table an AWS call went to, by its short name."""
    if aws.get("topic_arn"):
        return str(aws["topic_arn"]).rsplit(":", 1)[-1]
    if aws.get("queue_url"):
        return str(aws["queue_url"]).rstrip("/").rsplit("/", 1)[-1]
    if aws.get("table_name"):
        return str(aws["table_name"])
    return None


def _cause(cause: Any) -> str | None:
    if not isinstance(cause, dict):
        return None

    exceptions = cause.get("exceptions") or []
    if not exceptions:
        return None

    first = exceptions[0]
    kind = first.get("type") or "Error"
    return f"{kind}: {first.get('message', '')}".rstrip(": ")


def _flatten(documents: list[dict[str, Any]]) -> dict[str, Span]:
    """Every span of a trace's documents, by id; a document sent again (in
    progress, then finished) counts once, as its finished self."""
    spans: dict[str, Span] = {}

    def take(document: dict[str, Any], trace_id: str, parent: str | None,
             top: bool) -> None:
        if "id" not in document:
            return

        parent_id = document.get("parent_id") or parent
        segment = top and document.get("type") != "subsegment"
        span = _span(document, trace_id, parent_id, segment)
        known = spans.get(span.id)
        if known is None or known.end is None or span.end is not None:
            spans[span.id] = span
        for sub in document.get("subsegments") or []:
            take(sub, trace_id, span.id, False)

    for document in documents:
        take(document, str(document.get("trace_id", "")), None, True)
    return spans


def _assemble(spans: dict[str, Span]) -> list[Span]:
    """Hang each span below its parent; the roots, earliest first."""
    roots: list[Span] = []
    for span in spans.values():
        span.children = []
    for span in sorted(spans.values(), key=lambda s: s.start):
        parent = spans.get(span.parent_id) if span.parent_id else None
        if parent is None:
            roots.append(span)
        else:
            parent.children.append(span)

    def own(span: Span, service: str) -> None:
        span.service = span.name if span.segment else service
        for child in span.children:
            own(child, span.service)

    for root in roots:
        own(root, root.name)
    return roots


def _summary(trace_id: str, roots: list[Span]) -> TraceSummary:
    spans = [s for root in roots for s in root.walk()]
    segments = [s for s in spans if s.segment]
    first = min(spans, key=lambda s: s.start)
    start = first.start
    ends = [s.end for s in spans if s.end is not None]
    in_progress = any(s.end is None for s in segments)
    root = next((r for r in roots if r.segment), roots[0])
    services: list[str] = []
    for segment in sorted(segments, key=lambda s: s.start):
        if segment.name not in services:
            services.append(segment.name)
    links = sorted({str(link["trace_id"]) for s in segments for link in s.links})
    return TraceSummary(
        trace_id=trace_id,
        start=start,
        duration_ms=_rounded((max(ends) - start) * 1000) if ends else None,
        root=root.name,
        request=root.request or root.name,
        status=root.status,
        segments=len(segments),
        services=services,
        fault=any(s.fault or (s.status or 0) >= 500 for s in spans),
        error=any(s.error or s.throttle or 400 <= (s.status or 0) < 500
                  for s in spans),
        in_progress=in_progress,
        links_to=links,
    )


def _built(db: sqlite3.Connection, trace_id: str) -> tuple[TraceSummary, list[Span]]:
    documents = _documents(db, trace_id)
    if not documents:
        raise UnknownTrace(trace_id)

    roots = _assemble(_flatten(documents))
    return _summary(trace_id, roots), roots


# What the commands ask ----------------------------------------------------


def check_trace_id(trace_id: str) -> str:
    if not TRACE_ID.match(trace_id):
        raise TraceIdInvalid(trace_id)
    return trace_id


def recent(store: Path, limit: int = 20) -> list[TraceSummary]:
    """The `limit` traces that started last, newest first."""
    with _store(store) as db:
        found = [_built(db, trace_id)[0] for trace_id in _recent_ids(db, limit)]
    return sorted(found, key=lambda t: t.start, reverse=True)


def trace(store: Path, trace_id: str) -> Trace:
    """One trace as a tree: the traces it links to named, and the traces
    linked from it (a function's invocations) assembled too."""
    check_trace_id(trace_id)
    with _store(store) as db:
        summary, roots = _built(db, trace_id)
        found = Trace(summary, roots, [], [])
        found.links = _links_of(db, found)
        for linking in _linking_to(db, trace_id):
            other_summary, other_roots = _built(db, linking)
            other = Trace(other_summary, other_roots, [], [])
            other.links = _links_of(db, other)
            if any(link.trace_id == trace_id for link in other.links):
                found.linked_from.append(other)
        return found


def _links_of(db: sqlite3.Connection, found: Trace) -> list[Link]:
    links: list[Link] = []
    targets: dict[str, dict[str, Span]] = {}
    for span in found.spans():
        for link in span.links:
            linked = str(link.get("trace_id", ""))
            if linked not in targets:
                targets[linked] = _spans_of(db, linked)
            span_id = link.get("id")
            target = targets[linked].get(str(span_id)) if span_id else None
            links.append(Link(span.id, linked, span_id, _node_name(target),
                              target.service if target else None))
    return links


def _spans_of(db: sqlite3.Connection, trace_id: str) -> dict[str, Span]:
    spans = _flatten(_documents(db, trace_id))
    _assemble(spans)
    return spans


def service_map(store: Path, limit: int = 1000) -> ServiceMap:
    """Who calls whom, over the `limit` newest traces."""
    with _store(store) as db:
        ids = _recent_ids(db, limit)
        by_trace = {trace_id: _spans_of(db, trace_id) for trace_id in ids}
        nodes: dict[str, str] = {}
        edges: dict[tuple[str, str, str], Edge] = {}

        for trace_id in ids:
            spans = by_trace[trace_id]
            start = min((s.start for s in spans.values()), default=0.0)

            def count(source: str, target: str, kind: str, span: Span,
                      start: float = start) -> None:
                key = (source, target, kind)
                if key not in edges:
                    edges[key] = Edge(source, target, kind)
                edges[key].add(span, span.start - start)

            for span in spans.values():
                _map_span(span, spans, nodes, count)
                for link in span.links if span.segment else ():
                    source = _link_source(db, by_trace, link)
                    if source is not None:
                        nodes.setdefault(source[0], source[1])
                        count(source[0], span.name, "link", span)

    return ServiceMap(len(ids), nodes, _in_flow_order(list(edges.values())))


def _in_flow_order(edges: list[Edge]) -> list[Edge]:
    """Calls first, from the callers nothing calls outwards (breadth
    first), each step's edges in the order they showed in the traces;
    then the links."""
    calls = [e for e in edges if e.kind == "call"]
    targets = {e.target for e in calls}
    depth = {e.source: 0 for e in calls if e.source not in targets}
    frontier = list(depth)
    while frontier:
        reached = []
        for edge in calls:
            if edge.source in frontier and edge.target not in depth:
                depth[edge.target] = depth[edge.source] + 1
                reached.append(edge.target)
        frontier = reached
    deepest = max(depth.values(), default=0) + 1
    return sorted(
        edges,
        key=lambda e: (e.kind != "call", depth.get(e.source, deepest),
                       e.first_offset, e.source, e.target),
    )


def _map_span(span: Span, spans: dict[str, Span], nodes: dict[str, str],
              count: Any) -> None:
    parent = spans.get(span.parent_id) if span.parent_id else None
    if span.segment:
        nodes.setdefault(span.name, "function" if span.function else "service")
        if parent is None:
            if span.method:
                nodes.setdefault(CLIENT, "client")
                count(CLIENT, span.name, "call", span)
            return

        count(_node_name(parent) or parent.service, span.name, "call", span)
        return

    remote = _node_name(span)
    if remote is None or remote == span.service:
        return

    # An HTTP call to a traced process is drawn as the call to that process.
    if span.namespace == "remote" and span.sql is None and any(
        child.segment for child in span.children
    ):
        return

    nodes.setdefault(remote, _kind(span))
    count(span.service, remote, "call", span)


def _link_source(
    db: sqlite3.Connection,
    by_trace: dict[str, dict[str, Span]],
    link: dict[str, Any],
) -> tuple[str, str] | None:
    linked = str(link.get("trace_id", ""))
    if linked not in by_trace:
        by_trace[linked] = _spans_of(db, linked)
    target = by_trace[linked].get(str(link.get("id")))
    if target is None:
        return None

    name = _node_name(target) or target.service
    return name, (_kind(target) if not target.segment else "service")


def _node_name(span: Span | None) -> str | None:
    """The node of the map a span stands for: its process for a segment,
    the resource for a remote subsegment, the process for a local one."""
    if span is None:
        return None
    if span.segment:
        return span.name
    if span.namespace == "aws":
        return f"{span.name} {span.resource}" if span.resource else span.name
    if span.namespace == "remote":
        if span.sql is not None:
            return span.name
        host = urlsplit(span.url or "").netloc
        return host or span.name
    return span.service


def _kind(span: Span) -> str:
    if span.sql is not None:
        return "database"
    if span.namespace == "aws":
        return "aws"
    if span.namespace == "remote":
        return "http"
    return "service"


# Shapes for people ---------------------------------------------------------


def short_sql(query: str, width: int = SQL_WIDTH) -> str:
    """A statement on one line, column lists elided, cut at `width`."""
    text = " ".join(query.split())
    text = re.sub(r"^(SELECT(?: DISTINCT)?) .+? (FROM )", r"\1 … \2", text,
                  flags=re.IGNORECASE)
    text = re.sub(r"\(([^()]*)\)", lambda m: "(…)" if len(m.group(1)) > 24
                  else m.group(0), text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _path(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme:
        return url
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
