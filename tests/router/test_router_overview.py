"""Live rates over a recent window, from the router's cumulative counters."""

from __future__ import annotations

import time

from router_servers import EchoBackend, RunningRouter

from migrate.router.overview import Overview, RecentRates
from migrate.router.proxy import Latency


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _answers(latency: Latency, count: int, seconds: float, failed: int = 0) -> None:
    for n in range(count):
        latency.observe(seconds, failed=n < failed)


def test_rates_since_start_until_a_window_has_passed() -> None:
    clock = Clock()
    recent = RecentRates(window=60, clock=clock)
    seen = Latency()
    _answers(seen, 10, 0.004, failed=1)
    clock.now += 20

    span, (rates,), _ = recent.rates({("billing", "billing"): seen}, {})

    assert span == 20
    assert (rates.requests, rates.errors, rates.error_rate) == (10, 1, 0.1)
    assert rates.per_second == 0.5
    assert rates.p99_ms == 5.0


def test_answers_older_than_the_window_no_longer_count() -> None:
    clock = Clock()
    recent = RecentRates(window=60, clock=clock)
    seen = Latency()
    _answers(seen, 100, 2.0, failed=100)  # a bad minute, long ago
    clock.now += 30
    recent.rates({("billing", "billing"): seen}, {})
    clock.now += 60
    _answers(seen, 5, 0.002)
    clock.now += 10

    span, (rates,), _ = recent.rates({("billing", "billing"): seen}, {})

    assert span == 70
    assert (rates.requests, rates.errors) == (5, 0)
    assert rates.p99_ms == 2.5


def test_a_backend_without_answers_in_the_window_is_left_out() -> None:
    clock = Clock()
    recent = RecentRates(window=60, clock=clock)
    seen = Latency()
    _answers(seen, 3, 0.01)
    clock.now += 5
    recent.rates({("billing", "monolith"): seen}, {})
    clock.now += 61

    _, rates, _ = recent.rates({("billing", "monolith"): seen}, {})

    assert rates == []


def test_fallbacks_are_counted_over_the_same_window() -> None:
    clock = Clock()
    recent = RecentRates(window=60, clock=clock)
    clock.now += 5
    recent.rates({}, {"billing": 4})
    clock.now += 61

    _, _, fallbacks = recent.rates({}, {"billing": 6})

    assert fallbacks == {"billing": 2}


def test_snapshots_kept_every_second_bound_the_window_however_rarely_one_looks(
) -> None:
    clock = Clock()
    recent = RecentRates(window=60, clock=clock)
    seen = Latency()
    _answers(seen, 100, 2.0, failed=100)  # a bad minute, long ago
    for _ in range(300):  # five minutes in which nobody looks
        clock.now += 1
        recent.sample({("billing", "billing"): seen}, {})
    _answers(seen, 5, 0.002)

    span, (rates,), _ = recent.rates({("billing", "billing"): seen}, {})

    assert span == 60
    assert (rates.requests, rates.errors) == (5, 0)


def test_a_running_overview_keeps_its_window_on_its_own_timer(
    monolith: EchoBackend, router: RunningRouter,
) -> None:
    overview = Overview(router.router, None, "no system in this test",
                        rates=RecentRates(window=2))
    router.on_loop(_started(overview))
    try:
        monolith.status = 500
        for n in range(5):
            assert router.get(f"/invoices/{n}").status_code == 500
        monolith.status = 200
        # Nobody looks while the bad answers age out of the window.
        time.sleep(3.5)
        for n in range(3):
            assert router.get(f"/invoices/{n}").ok

        found = router.on_loop(overview.gather())
    finally:
        router.on_loop(overview.stop())

    (seen,) = [b for b in found["backends"]
               if (b["context"], b["backend"]) == ("billing", "monolith")]
    assert found["window_seconds"] <= 3
    assert (seen["requests"], seen["errors"]) == (3, 0)


async def _started(overview: Overview) -> None:
    overview.start()
