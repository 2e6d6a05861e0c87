"""X-Ray tracing of routed requests, sampled as in production.

Off unless the router is started with tracing on. Then every request gets
an `X-Amzn-Trace-Id` towards its backend, so the backend's own segments
join the same trace, and a sample of requests is recorded as a segment of
the router's own (name `router`, with the context and backend as
annotations) and sent over UDP to the X-Ray daemon's address
(`AWS_XRAY_DAEMON_ADDRESS`, default 127.0.0.1:2000).

Which requests: the client's decision when its trace header carries one
(`Sampled=1` or `0`); otherwise aws-xray-sdk's local sampler with one
rule, by default the first request each second plus 5 % of the rest (the
SDK's own production default). The SDK's recorder keeps the sampler and
the UDP emitter; segments are built directly rather than through its
context, which does not follow asyncio tasks.

An unsampled request costs a sampling decision and a random trace id
(about 1 µs); a sampled one, a segment's JSON and one datagram (about
15 µs, and the kernel's work for the datagram).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time

DEFAULT_DAEMON = "127.0.0.1:2000"
_UNSAMPLED = b"X-Amzn-Trace-Id: Root=%s%08x;Sampled=0\r\n\r\n"
HEADER = b"X-Amzn-Trace-Id"


class Segment:
    """A sampled request's X-Ray segment, written as the daemon reads it."""

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
        """The segment document as JSON; the SDK's emitter calls this."""
        text = json.dumps
        extra = ""
        if self.parent_id:
            extra += f',"parent_id":{text(self.parent_id)}'
        if self.status >= 500:
            extra += ',"fault":true'
        elif self.status >= 400:
            extra += ',"error":true'
        return (
            f'{{"name":{text(self.name)},"id":"{self.id}",'
            f'"trace_id":{text(self.trace_id)},'
            f'"start_time":{self.start_time!r},"end_time":{self.end_time!r},'
            f'"http":{{"request":{{"method":{text(self.method)},'
            f'"url":{text(self.url)}}},"response":{{"status":{self.status}}}}},'
            f'"annotations":{{"context":{text(self.context)},'
            f'"backend":{text(self.backend)}}}{extra}}}'
        )


class Tracer:
    """Samples requests and sends their segments to the daemon."""

    def __init__(
        self,
        per_second: int = 1,
        rate: float = 0.05,
        address: str | None = None,
        name: str = "router",
    ):
        from aws_xray_sdk.core import AWSXRayRecorder
        from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
        from aws_xray_sdk.core.sampling.local.sampler import LocalSampler

        address = address or os.environ.get("AWS_XRAY_DAEMON_ADDRESS", DEFAULT_DAEMON)
        rules = {
            "version": 2,
            "rules": [],
            "default": {"fixed_target": per_second, "rate": rate},
        }
        self.recorder = AWSXRayRecorder()
        self.recorder.configure(
            sampling=True,
            sampler=LocalSampler(rules),
            emitter=UDPEmitter(address),
            context_missing="IGNORE_ERROR",
            service=name,
        )
        self.name = name
        self.address = address
        self.per_second = per_second
        self.rate = rate
        self._should_trace = self.recorder.sampler.should_trace
        self._emit = self.recorder.emitter.send_entity
        # Trace and segment ids need only be unique: a random prefix per
        # process and a counter are, and cost less than fresh random bits.
        generator = random.SystemRandom()
        self._prefix = f"{generator.getrandbits(64):016x}"
        self._segment_prefix = f"{generator.getrandbits(32):08x}"
        self._count = itertools.count(generator.getrandbits(16))
        self._second = 0
        self._epoch = ""
        self._epoch_bytes = b""
        self.sampled = 0

    def begin(self, incoming: bytes | None) -> tuple[bytes, Segment | None]:
        """Decide whether to sample. Returns the trace header line to send
        to the backend (ending the head: CRLF CRLF) and the request's
        segment if it is sampled, else None."""
        if incoming is None:
            # The common case, kept short: a new trace, the sampler decides.
            number = next(self._count) & 0xFFFFFFFF
            now = int(time.time())
            if now != self._second:
                self._new_second(now)
            if not self._should_trace():
                return _UNSAMPLED % (self._epoch_bytes, number), None

            return self._sampled(f"{self._epoch}{number:08x}", None, number)

        root = parent = None
        decision: bool | None = None
        for part in incoming.decode("latin-1").split(";"):
            key, _, value = part.strip().partition("=")
            if key == "Root":
                root = value
            elif key == "Parent":
                parent = value
            elif key == "Sampled" and value in ("0", "1"):
                decision = value == "1"
        if decision is None:
            decision = self._should_trace()
        number = next(self._count) & 0xFFFFFFFF
        if root is None:
            now = int(time.time())
            if now != self._second:
                self._new_second(now)
            root = f"{self._epoch}{number:08x}"
        if not decision:
            return b"X-Amzn-Trace-Id: Root=%s;Sampled=0\r\n\r\n" % root.encode(), None

        return self._sampled(root, parent, number)

    def _new_second(self, now: int) -> None:
        # X-Ray's trace id: version, epoch seconds in hex, then 96 bits
        # unique to the request (a prefix per process and a counter).
        self._second = now
        self._epoch = f"1-{now:08x}-{self._prefix}"
        self._epoch_bytes = self._epoch.encode()

    def _sampled(
        self, root: str, parent: str | None, number: int
    ) -> tuple[bytes, Segment]:
        segment = Segment(self.name, root, parent,
                          f"{self._segment_prefix}{number:08x}")
        self.sampled += 1
        line = b"X-Amzn-Trace-Id: Root=%s;Parent=%s;Sampled=1\r\n\r\n" % (
            root.encode(), segment.id.encode()
        )
        return line, segment

    def end(
        self, segment: Segment, method: str, url: str, status: int, context: str,
        backend: str,
    ) -> None:
        """Close a sampled request's segment and send it to the daemon."""
        segment.end_time = time.time()
        segment.method = method
        segment.url = url
        segment.status = status
        segment.context = context
        segment.backend = backend
        self._emit(segment)
