"""Service level objectives per context, and the windows that judge them.

A context's SLO says how its service must behave while it takes reads: at
most `max_error_rate` of the requests the router sends it may fail
(refused, timed out, or answered 5xx), and the 99th percentile of its
answer times stays under `max_p99_ms`, both over the last `window_seconds`.
A window that saw fewer than `min_requests` requests is *inconclusive*: it
neither proves the service healthy nor proves it sick, so it neither
promotes a rollout nor rolls one back.

`Window` keeps one slot per second (count, failures, a latency histogram),
so recording a request costs a few list operations and judging a window
sums at most `window_seconds` slots. Percentiles come from the histogram:
a p99 is reported as the upper edge of the bucket it falls in, at most
about 12 % above the true value.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Literal

# Bucket edges in seconds: 50 µs to 60 s, each about 12 % above the last.
_EDGES = tuple(0.00005 * 1.12**n for n in range(124))

OK: Literal["ok"] = "ok"
BREACH: Literal["breach"] = "breach"
INCONCLUSIVE: Literal["inconclusive"] = "inconclusive"


@dataclasses.dataclass(frozen=True)
class Slo:
    """What a context's service must keep to while it takes traffic."""

    max_error_rate: float = 0.01
    max_p99_ms: float = 500.0
    window_seconds: float = 30.0
    min_requests: int = 20

    def text(self) -> str:
        return (
            f"errors <= {self.max_error_rate:.2%}, p99 <= {self.max_p99_ms:g} ms "
            f"over {self.window_seconds:g} s (at least {self.min_requests} requests)"
        )


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A window's judgement of an SLO, with the figures behind it."""

    kind: Literal["ok", "breach", "inconclusive"]
    requests: int
    failures: int
    p99_ms: float | None
    reason: str

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "verdict": self.kind,
            "requests": self.requests,
            "failures": self.failures,
            "error_rate": self.error_rate,
            "p99_ms": self.p99_ms,
            "reason": self.reason,
        }


class Histogram:
    """Latencies in fixed buckets; cheap to add to and to merge."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(_EDGES) + 1)
        self.total = 0

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(_EDGES, seconds)] += 1
        self.total += 1

    def merge(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total

    def percentile(self, share: float) -> float | None:
        """The upper edge (seconds) of the bucket holding this share."""
        if not self.total:
            return None

        wanted = share * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= wanted:
                return _EDGES[min(index, len(_EDGES) - 1)]
        return _EDGES[-1]


class _Slot:
    __slots__ = ("second", "requests", "failures", "latency")

    def __init__(self, second: int):
        self.second = second
        self.requests = 0
        self.failures = 0
        self.latency = Histogram()


class Window:
    """The last minutes of one context's service traffic, second by second."""

    def __init__(self, seconds: int = 600):
        self._slots: list[_Slot | None] = [None] * seconds

    def record(self, now: float, seconds: float | None) -> None:
        """One request at `now`; `seconds` is its answer time, None if it failed."""
        second = int(now)
        index = second % len(self._slots)
        slot = self._slots[index]
        if slot is None or slot.second != second:
            slot = self._slots[index] = _Slot(second)
        slot.requests += 1
        if seconds is None:
            slot.failures += 1
        else:
            # Histogram.add, inlined: this runs for every read of a service.
            latency = slot.latency
            latency.counts[bisect.bisect_left(_EDGES, seconds)] += 1
            latency.total += 1

    def clear(self) -> None:
        self._slots = [None] * len(self._slots)

    def judge(self, slo: Slo, now: float) -> Verdict:
        """The SLO's verdict over the window that ends at `now`."""
        since = now - slo.window_seconds
        requests = failures = 0
        latency = Histogram()
        for slot in self._slots:
            if slot is None or slot.second < since or slot.second > now:
                continue
            requests += slot.requests
            failures += slot.failures
            latency.merge(slot.latency)

        p99 = latency.percentile(0.99)
        p99_ms = None if p99 is None else round(p99 * 1000, 3)
        window = f"{slo.window_seconds:g} s"
        if requests < slo.min_requests:
            return Verdict(
                INCONCLUSIVE, requests, failures, p99_ms,
                f"{requests} requests in the last {window}, fewer than the "
                f"{slo.min_requests} needed to judge",
            )

        rate = failures / requests
        if rate > slo.max_error_rate:
            return Verdict(
                BREACH, requests, failures, p99_ms,
                f"error rate {rate:.2%} ({failures} of {requests}) over {window} "
                f"is above the SLO's {slo.max_error_rate:.2%}",
            )

        if p99_ms is not None and p99_ms > slo.max_p99_ms:
            return Verdict(
                BREACH, requests, failures, p99_ms,
                f"p99 {p99_ms:g} ms over {window} is above the SLO's "
                f"{slo.max_p99_ms:g} ms",
            )

        return Verdict(
            OK, requests, failures, p99_ms,
            f"error rate {rate:.2%} and p99 {p99_ms} ms over {window} "
            "are within the SLO",
        )
