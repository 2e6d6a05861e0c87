"""Tracing with AWS X-Ray for every process of the system: the one module
that knows aws-xray-sdk.

A trace follows a request across every hop. The header that carries it is
X-Ray's own, `Root=1-<epoch>-<96 bits>;Parent=<segment id>;Sampled=1|0`:

- over HTTP as `X-Amzn-Trace-Id` (router -> monolith or service, and the
  generated clients between contexts);
- into an outbox row (`trace_header`), written with the change, so the relay
  that publishes the event later, in another process, continues the trace;
- over SNS as the message attribute `AWSTraceHeader`, which subscriptions
  with raw delivery hand on as an SQS message attribute;
- over SQS as the system attribute `AWSTraceHeader` where the kit sends
  messages itself (the emulator, unlike SQS, does not copy it from the
  HTTP header), read back before the message attribute.

A process continues the trace it was handed (same root, the sender's
segment as parent, the sender's sampling decision). A Lambda function fed
by SQS does not: as on AWS, its invocation starts a trace of its own that
*links* to the trace of each message in the batch (`links` in the segment
document).

Where a trace is new, a local sampler decides, with no daemon to ask for
rules: `MIGRATE_TRACE_PER_SECOND` requests each second (default 1) and
`MIGRATE_TRACE_RATE` of the rest (default 0.05), X-Ray's own default.
Segments go as UDP datagrams to `AWS_XRAY_DAEMON_ADDRESS` (default
127.0.0.1:2000), where the X-Ray daemon, or the kit's collector, listens.
Tracing is off unless `MIGRATE_TRACING=on` (`migrate up` turns it on).

Inside a process the SDK keeps the current segment per thread; under
eventlet, per greenthread. A greenthread spawned by another does not
inherit its segment, so the kit hands the header on explicitly wherever
work changes greenthread (the Nameko entrypoints) and never relies on the
SDK's context across a spawn. What is recorded as subsegments: SQL
statements (through SQLAlchemy's cursor events), calls to SNS and SQS
(botocore) and outgoing HTTP (requests).

Two kinds of code build segment documents without the SDK's context:
`RequestTracer`, for the router, whose asyncio tasks the SDK's context does
not follow and whose every microsecond counts; and `Document`, for work that
serves several traces at once (a relay publishing a batch, the Lambda
runtime invoking a function with a batch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import json.encoder
import logging
import math
import os
import random
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

from migrate.errors import ConfigurationError

_log = logging.getLogger(__name__)

HEADER = "X-Amzn-Trace-Id"
# The name under which the header travels on SNS and SQS messages.
ATTRIBUTE = "AWSTraceHeader"
DEFAULT_DAEMON = "127.0.0.1:2000"
DEFAULT_RATE = 0.05
DEFAULT_PER_SECOND = 1


@dataclasses.dataclass(frozen=True)
class TraceHeader:
    """X-Ray's trace header: the trace, the calling segment, the decision."""

    root: str
    parent: str | None = None
    sampled: bool | None = None

    @classmethod
    def parse(cls, text: str | bytes | None) -> TraceHeader | None:
        """The header's fields, or None when it names no trace."""
        if not text:
            return None

        if isinstance(text, bytes):
            text = text.decode("latin-1")
        fields: dict[str, str] = {}
        for part in text.split(";"):
            key, _, value = part.strip().partition("=")
            fields[key] = value
        root = fields.get("Root")
        if not root:
            return None

        sampled = {"1": True, "0": False}.get(fields.get("Sampled", ""))
        return cls(root, fields.get("Parent") or None, sampled)

    def __str__(self) -> str:
        text = f"Root={self.root}"
        if self.parent:
            text += f";Parent={self.parent}"
        if self.sampled is not None:
            text += f";Sampled={int(self.sampled)}"
        return text

    def calling(self, parent: str) -> TraceHeader:
        """The same trace and decision, with `parent` as the caller."""
        return dataclasses.replace(self, parent=parent)


@dataclasses.dataclass(frozen=True)
class Config:
    enabled: bool = False
    rate: float = DEFAULT_RATE
    per_second: int = DEFAULT_PER_SECOND
    address: str = DEFAULT_DAEMON

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        switch = env.get("MIGRATE_TRACING", "off").lower()
        if switch not in ("on", "off"):
            raise ConfigurationError(
                f"MIGRATE_TRACING={switch!r}: tracing is 'on' or 'off'"
            )

        rate_text = env.get("MIGRATE_TRACE_RATE", str(DEFAULT_RATE))
        try:
            rate = float(rate_text)
        except ValueError:
            rate = -1.0
        if not 0 <= rate <= 1:
            raise ConfigurationError(
                f"MIGRATE_TRACE_RATE={rate_text!r}: the share of requests "
                "traced runs 0-1"
            )

        per_second = env.get("MIGRATE_TRACE_PER_SECOND", str(DEFAULT_PER_SECOND))
        if not per_second.isdigit():
            raise ConfigurationError(
                f"MIGRATE_TRACE_PER_SECOND={per_second!r}: a whole number of "
                "requests each second, 0 or more"
            )

        address = env.get("AWS_XRAY_DAEMON_ADDRESS", DEFAULT_DAEMON)
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"AWS_XRAY_DAEMON_ADDRESS={address!r}: the daemon's address is "
                "HOST:PORT"
            )

        return cls(switch == "on", rate, int(per_second), address)

    def rules(self) -> dict[str, Any]:
        """Local sampling rules in the SDK's format: one default rule."""
        return {
            "version": 2,
            "rules": [],
            "default": {"fixed_target": self.per_second, "rate": self.rate},
        }


class _State:
    recorder: Any = None
    service: str = ""
    config: Config = Config()


_state = _State()


def configure(
    service: str, environ: Mapping[str, str] | None = None
) -> bool:
    """Trace this process as `service`, if tracing is on; True when it is.

    Configures the SDK's global recorder with local sampling rules and the
    daemon's address, and patches botocore and requests, so that calls to
    SNS, SQS and other HTTP services become subsegments of the current
    segment and carry the trace header.
    """
    if _state.recorder is not None and _state.service == service:
        return True

    config = Config.from_env(environ)
    _state.config = config
    _state.service = service
    if not config.enabled:
        return False

    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core import patch, xray_recorder
    from aws_xray_sdk.core.sampling.local.sampler import LocalSampler

    global_sdk_config.set_sdk_enabled(True)
    xray_recorder.configure(
        service=service,
        sampling=True,
        sampler=LocalSampler(config.rules()),
        daemon_address=config.address,
        context_missing="IGNORE_ERROR",
        plugins=(),
        stream_sql=True,
    )
    patch(("botocore", "requests"))
    _state.recorder = xray_recorder
    _log.debug("tracing %s to %s", service, config.address)
    return True


def enabled() -> bool:
    return _state.recorder is not None


def service_name() -> str:
    return _state.service


def current_header() -> str | None:
    """The header that continues the current segment's trace, to send on;
    None outside a traced request."""
    recorder = _state.recorder
    if recorder is None:
        return None

    entity = recorder.get_trace_entity()
    if entity is None:
        return None

    segment = entity if _is_segment(entity) else entity.parent_segment
    if not segment.sampled:
        origin = TraceHeader.parse(_origin(segment))
        if origin is None:
            return None
        return str(TraceHeader(origin.root, None, False))

    return str(TraceHeader(segment.trace_id, entity.id, True))


def current_trace_id() -> str | None:
    """The trace the current thread works for, sampled or not."""
    header = TraceHeader.parse(current_header())
    return header.root if header else None


def _is_segment(entity: Any) -> bool:
    return getattr(entity, "parent_segment", None) is None or (
        entity.parent_segment is entity
    )


def _origin(segment: Any) -> str | None:
    saved = getattr(segment, "get_origin_trace_header", None)
    header = saved() if saved else None
    return None if header is None else header.to_header_str()


def should_sample() -> bool:
    """The local sampler's decision for a trace that starts here."""
    recorder = _state.recorder
    return bool(recorder is not None and recorder.sampler.should_trace())


# Segments through the SDK's context ----------------------------------------


def begin_segment(
    name: str | None = None, header: str | None = None, **annotations: str
) -> Any:
    """Start this thread's segment, continuing `header`'s trace if given;
    None when tracing is off. End it with `end_segment`."""
    recorder = _state.recorder
    if recorder is None:
        return None

    from aws_xray_sdk.core.models.trace_header import TraceHeader as SdkHeader

    incoming = TraceHeader.parse(header)
    sampling: int | None = None
    if incoming is not None and incoming.sampled is not None:
        sampling = int(incoming.sampled)
    segment = recorder.begin_segment(
        name or _state.service,
        traceid=incoming.root if incoming else None,
        parent_id=incoming.parent if incoming else None,
        sampling=sampling,
    )
    if incoming is not None:
        segment.save_origin_trace_header(
            SdkHeader(incoming.root, incoming.parent, sampling)
        )
    for key, value in annotations.items():
        segment.put_annotation(key, value)
    return segment


def end_segment(
    status: int | None = None, error: BaseException | None = None
) -> None:
    """End this thread's segment and send it, if sampled."""
    recorder = _state.recorder
    if recorder is None:
        return

    segment = recorder.current_segment()
    if segment is None:
        return

    if status is not None:
        segment.put_http_meta("status", status)
        segment.apply_status_code(status)
    if error is not None:
        from aws_xray_sdk.core.utils import stacktrace

        segment.add_exception(error, stacktrace.get_stacktrace(limit=10))
    recorder.end_segment()


@contextlib.contextmanager
def segment(
    name: str | None = None, header: str | None = None, **annotations: str
) -> Iterator[Any]:
    """A segment around a block of work, continuing `header`'s trace."""
    started = begin_segment(name, header, **annotations)
    try:
        yield started
    except BaseException as error:
        if started is not None:
            end_segment(error=error)
        raise
    if started is not None:
        end_segment()


def annotate(**annotations: str) -> None:
    """Add indexed annotations to the current segment, if there is one."""
    recorder = _state.recorder
    if recorder is None:
        return

    current = recorder.current_segment()
    if current is not None:
        for key, value in annotations.items():
            current.put_annotation(key, value)


def instrument_flask(app: Any) -> None:
    """A segment per request of a Flask app (the SDK's own middleware)."""
    if _state.recorder is None:
        return

    import flask
    from aws_xray_sdk.ext.flask.middleware import XRayMiddleware

    recorder = _state.recorder

    def answer_with_the_callers_trace(response: Any) -> Any:
        # An unsampled request's segment is the SDK's dummy, whose trace id
        # is all zeros: the SDK would answer with that id, which names no
        # trace. The caller's root goes back instead, or none at all.
        if getattr(recorder.current_segment(), "sampled", True):
            return response
        caller = TraceHeader.parse(flask.request.headers.get(HEADER))
        if caller is None:
            response.headers.pop(HEADER, None)
        else:
            response.headers[HEADER] = f"Root={caller.root};Sampled=0"
        return response

    # Flask runs after-request functions last registered first: this one,
    # registered before the SDK's middleware, sees the header it wrote.
    app.after_request(answer_with_the_callers_trace)
    XRayMiddleware(app, recorder)


def instrument_engine(engine: Any) -> None:
    """A subsegment per SQL statement the engine runs in a traced request.

    Through SQLAlchemy's cursor events rather than the SDK's patch of
    `Connection.execute`, so statements run by `exec_driver_sql` and by the
    ORM are seen too. The statement text is recorded with its placeholders,
    never its parameters.
    """
    if _state.recorder is None:
        return

    import sqlalchemy as sa

    recorder = _state.recorder
    url = engine.url.set(password=None) if engine.url.password else engine.url
    sql = {
        "url": url.render_as_string(hide_password=True),
        "database_type": engine.dialect.name,
        "driver_version": engine.dialect.driver,
    }
    name = engine.url.database or engine.dialect.name
    if "/" in name:
        name = name.rsplit("/", 1)[1]

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if recorder.get_trace_entity() is None:
            return

        subsegment = recorder.begin_subsegment(name, namespace="remote")
        if subsegment is not None:
            subsegment.set_sql({**sql, "sanitized_query": statement})
            conn.info.setdefault("xray_subsegments", []).append(subsegment)

    def after(conn: Any, *rest: Any) -> None:
        opened = conn.info.get("xray_subsegments")
        if opened:
            opened.pop()
            recorder.end_subsegment()

    def failed(context: Any) -> None:
        conn = context.connection
        opened = conn.info.get("xray_subsegments") if conn is not None else None
        if opened:
            subsegment = opened.pop()
            subsegment.add_fault_flag()
            recorder.end_subsegment()

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    sa.event.listen(engine, "handle_error", failed)


# Documents built by hand ---------------------------------------------------

_ids = random.SystemRandom()


def new_id() -> str:
    """A segment id: 64 random bits in 16 hexadecimal digits."""
    return f"{_ids.getrandbits(64):016x}"


def new_trace_id(now: float | None = None) -> str:
    """A trace id: version 1, the epoch second in hex, 96 random bits."""
    second = int(time.time() if now is None else now)
    return f"1-{second:08x}-{_ids.getrandbits(96):024x}"


class Document:
    """A segment or subsegment document, as the daemon receives it."""

    def __init__(
        self,
        name: str,
        trace_id: str,
        parent_id: str | None = None,
        *,
        namespace: str | None = None,
        origin: str | None = None,
        start_time: float | None = None,
    ):
        self.name = name
        self.id = new_id()
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.namespace = namespace
        self.origin = origin
        self.start_time = time.time() if start_time is None else start_time
        self.end_time: float | None = None
        self.subsegments: list[Document] = []
        self.annotations: dict[str, str | int | float | bool] = {}
        self.metadata: dict[str, Any] = {}
        self.http: dict[str, Any] = {}
        self.aws: dict[str, Any] = {}
        self.links: list[dict[str, Any]] = []
        self.fault = False
        self.error = False
        self.cause: dict[str, Any] | None = None

    def child(self, name: str, namespace: str | None = None) -> Document:
        """A subsegment of this document, started now."""
        sub = Document(name, self.trace_id, namespace=namespace)
        self.subsegments.append(sub)
        return sub

    def link(self, header: TraceHeader, **attributes: str) -> None:
        """Link this document to the trace (and segment) `header` names."""
        link: dict[str, Any] = {"trace_id": header.root}
        if header.parent:
            link["id"] = header.parent
        if attributes:
            link["attributes"] = attributes
        self.links.append(link)

    def failed(self, error: BaseException | str) -> None:
        self.fault = True
        message = str(error)
        kind = type(error).__name__ if isinstance(error, BaseException) else "Error"
        self.cause = {"exceptions": [{"id": new_id(), "message": message,
                                      "type": kind}]}

    def header(self) -> TraceHeader:
        """The header that makes this document the caller."""
        return TraceHeader(self.trace_id, self.id, True)

    def finish(self, end_time: float | None = None) -> Document:
        self.end_time = time.time() if end_time is None else end_time
        for sub in self.subsegments:
            if sub.end_time is None:
                sub.finish(self.end_time)
        return self

    def as_dict(self, top: bool = True) -> dict[str, Any]:
        found: dict[str, Any] = {
            "name": self.name,
            "id": self.id,
            "start_time": self.start_time,
            "end_time": self.end_time if self.end_time is not None else time.time(),
        }
        if top:
            found["trace_id"] = self.trace_id
            if self.parent_id:
                found["parent_id"] = self.parent_id
        for key in ("namespace", "origin", "cause"):
            value = getattr(self, key)
            if value:
                found[key] = value
        for key in ("annotations", "metadata", "http", "aws", "links"):
            value = getattr(self, key)
            if value:
                found[key] = value
        if self.fault:
            found["fault"] = True
        if self.error:
            found["error"] = True
        if self.subsegments:
            found["subsegments"] = [s.as_dict(top=False) for s in self.subsegments]
        return found

    def serialize(self) -> str:
        """The document as JSON; the SDK's emitter calls this."""
        return json.dumps(self.as_dict(), separators=(",", ":"))


def emit(document: Document) -> None:
    """Send a finished document to the daemon, when tracing is on."""
    recorder = _state.recorder
    if recorder is None:
        return

    if document.end_time is None:
        document.finish()
    recorder.emitter.send_entity(document)


# The router's tracer ---------------------------------------------------------

_json_string = json.encoder.encode_basestring_ascii


class _Daemon:
    """The X-Ray daemon's UDP socket, as the SDK's emitter writes to it:
    the protocol header, a newline, one document a datagram.

    Not the SDK's `UDPEmitter`, which formats a debug line of every
    message whether or not it is logged and addresses each datagram anew:
    this socket is connected once. A datagram nobody takes (no daemon yet,
    a full buffer) is counted and dropped: a trace may be lost, a request
    never waits for one.
    """

    def __init__(self, address: str):
        from aws_xray_sdk.core.daemon_config import DaemonConfig
        from aws_xray_sdk.core.emitters.udp_emitter import (
            PROTOCOL_DELIMITER,
            PROTOCOL_HEADER,
        )

        config = DaemonConfig(address)
        self._header = (PROTOCOL_HEADER + PROTOCOL_DELIMITER).encode()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._socket.connect((config.udp_ip, config.udp_port))
        self.dropped = 0

    def send(self, documents: list[str]) -> None:
        header, send = self._header, self._socket.send
        for document in documents:
            try:
                send(header + document.encode())
            except OSError:
                # On a connected socket a daemon that is not listening
                # shows as a refused send: the trace is lost, and only it.
                self.dropped += 1


# Segments leave in bursts: a datagram sent alone wakes the daemon for
# itself, which on a loopback costs the sender about three times the send
# (12 µs against 4 µs, measured); sent together, they wake it once. A
# segment waits at most FLUSH_SECONDS, or until BURST are waiting.
BURST = 64
FLUSH_SECONDS = 0.1


class RequestSegment:
    """A sampled request's segment, written as the daemon reads it."""

    __slots__ = ("name", "id", "trace_id", "parent_id", "start_time", "end_time",
                 "method", "url", "status", "context", "backend")

    def __init__(self, name: str, trace_id: str, parent_id: str | None,
                 segment_id: str):
        self.name = name
        self.id = segment_id
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.start_time = time.time()
        self.end_time = 0.0
        self.method = self.url = self.context = self.backend = ""
        self.status = 0

    def serialize(self) -> str:
        """The segment document as JSON."""
        # One formatting, and the C string encoder of the json module only
        # where a value is not ours: a json.dumps costs several times more,
        # on every sample. The method is an HTTP token, which needs none.
        text = _json_string
        extra = ""
        if self.parent_id:
            extra = ',"parent_id":' + text(self.parent_id)
        if self.status >= 500:
            extra += ',"fault":true'
        elif self.status >= 400:
            extra += ',"error":true'
        return _SEGMENT % (
            text(self.name), self.id, text(self.trace_id), self.start_time,
            self.end_time, self.method, text(self.url), self.status,
            text(self.context), text(self.backend), extra,
        )


_SEGMENT = (
    '{"name":%s,"id":"%s","trace_id":%s,"start_time":%.6f,"end_time":%.6f,'
    '"http":{"request":{"method":"%s","url":%s},"response":{"status":%d}},'
    '"annotations":{"context":%s,"backend":%s}%s}'
)


class RequestTracer:
    """Samples the router's requests and sends their segments to the daemon.

    Every request gets a trace header towards its backend, so the backend's
    own segments join the trace; a sample of requests is recorded as a
    segment of the router's own (the context and backend as annotations).
    Which requests: the client's decision when its header carries one;
    otherwise X-Ray's local sampling rule, the one `Config.rules` gives the
    SDK's sampler elsewhere: the first `per_second` requests each second,
    then `rate` of the rest.

    The rule is applied here rather than by the SDK's `LocalSampler`, which
    takes a lock and reads the clock on every call (about 0.7 µs, the most
    of what tracing cost an unsampled request). The router runs on one
    thread and hands in the monotonic clock it reads once a request anyway;
    the wall clock is read once a second. Rather than a random draw per
    request, the sampler counts down to the next sampled one: the gaps
    between samples of a rate are geometrically distributed, so drawing the
    gap once per sample is the same rule at a draw a sample. Segments are
    built directly, because the SDK's context does not follow asyncio
    tasks, and sent in bursts (see `BURST`) on a socket of their own. An
    unsampled request costs a countdown and a trace id (under 0.5 µs); a
    sampled one, a segment's JSON and one datagram (about 6 µs).
    """

    def __init__(
        self,
        per_second: int = DEFAULT_PER_SECOND,
        rate: float = DEFAULT_RATE,
        address: str | None = None,
        name: str = "router",
    ):
        address = address or os.environ.get("AWS_XRAY_DAEMON_ADDRESS", DEFAULT_DAEMON)
        self._daemon = _Daemon(address)
        self.name = name
        self.address = address
        self.per_second = per_second
        self.rate = rate
        self._random = random.Random()
        # Trace and segment ids need only be unique: a random prefix per
        # process and a counter are, and cost less than fresh random bits.
        # The trace counter starts again each second, whose epoch is in the
        # trace id; segment ids count on.
        self._prefix = f"{_ids.getrandbits(64):016x}"
        self._segment_prefix = f"{_ids.getrandbits(32):08x}"
        self._segments = itertools.count(_ids.getrandbits(16))
        self._number = 0
        # The second of the trace ids, by the wall clock, and when it ends
        # on the monotonic clock.
        self._second = 0
        self._next_second = float("-inf")
        self._left = per_second
        # Requests until the next one the rule samples, this one included.
        self._gap = self._next_gap()
        self._epoch = ""
        self._unsampled = b""
        self._pending: list[RequestSegment] = []
        self.sampled = 0

    @property
    def dropped(self) -> int:
        """Segments the daemon did not take (not listening, buffer full)."""
        return self._daemon.dropped

    def begin(
        self, incoming: bytes | None, now: float
    ) -> tuple[bytes, RequestSegment | None]:
        """Decide whether to sample a request that arrived at `now` (the
        monotonic clock). Returns the trace header line to send to the
        backend (ending the head: CRLF CRLF) and the request's segment if
        it is sampled, else None."""
        if now >= self._next_second:
            self._new_second(now)
        self._number += 1
        if incoming is None:
            # The common case, kept short: a new trace, the rule decides.
            self._gap -= 1
            if self._gap > 0:
                return self._unsampled % self._number, None

            self._chosen()
            return self._sampled(f"{self._epoch}{self._number:08x}", None)

        header = TraceHeader.parse(incoming)
        decision = header.sampled if header else None
        if decision is None:
            self._gap -= 1
            decision = self._gap <= 0
            if decision:
                self._chosen()
        if header is None:
            root, parent = f"{self._epoch}{self._number:08x}", None
        else:
            root, parent = header.root, header.parent
        if not decision:
            return b"X-Amzn-Trace-Id: Root=%s;Sampled=0\r\n\r\n" % root.encode(), None

        return self._sampled(root, parent)

    def _chosen(self) -> None:
        """The rule sampled a request: take it from the second's reservoir,
        and count down to the next."""
        if self._left > 0:
            self._left -= 1
        self._gap = 1 if self._left > 0 else self._next_gap()

    def _next_gap(self) -> float:
        """Requests until the rate samples one: geometric, at least 1."""
        rate = self.rate
        if rate >= 1:
            return 1
        if rate <= 0:
            return math.inf

        return 1 + math.floor(math.log(1 - self._random.random()) / math.log(1 - rate))

    def _new_second(self, now: float) -> None:
        # X-Ray's trace id: version, epoch seconds in hex, then 96 bits
        # unique to the request (a prefix per process and a counter).
        wall = time.time()
        second = int(wall)
        self._next_second = now + (second + 1 - wall)
        if second <= self._second:
            # Still the same second by the wall clock (the two clocks part
            # by a rounding), or the wall clock stepped back: the epoch and
            # the count go on, so no trace id comes twice.
            return

        self._second = second
        self._number = 0
        self._left = self.per_second
        if self._left > 0:
            self._gap = 1
        self._epoch = f"1-{second:08x}-{self._prefix}"
        # One formatting a request: the id's hex digits have no % in them.
        self._unsampled = (
            b"X-Amzn-Trace-Id: Root=%s%%08x;Sampled=0\r\n\r\n" % self._epoch.encode()
        )

    def _sampled(
        self, root: str, parent: str | None
    ) -> tuple[bytes, RequestSegment]:
        number = next(self._segments) & 0xFFFFFFFF
        segment = RequestSegment(self.name, root, parent,
                                 f"{self._segment_prefix}{number:08x}")
        self.sampled += 1
        line = b"X-Amzn-Trace-Id: Root=%s;Parent=%s;Sampled=1\r\n\r\n" % (
            root.encode(), segment.id.encode()
        )
        return line, segment

    def end(
        self, segment: RequestSegment, method: str, url: str, status: int,
        context: str, backend: str,
    ) -> None:
        """Close a sampled request's segment; it leaves with the next burst."""
        segment.end_time = time.time()
        segment.method = method
        segment.url = url
        segment.status = status
        segment.context = context
        segment.backend = backend
        pending = self._pending
        pending.append(segment)
        if len(pending) >= BURST:
            self.flush()

    def flush(self) -> None:
        """Send the closed segments to the daemon, a datagram each, one
        after the other; the router calls this every `FLUSH_SECONDS`."""
        pending, self._pending = self._pending, []
        self._daemon.send([segment.serialize() for segment in pending])
