"""Failing services: circuit breaker, keyed write retries, SLO rollback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from router_servers import (
    EchoBackend,
    RawBackend,
    RunningRouter,
    closed_port,
    eventually,
)

from migrate.router.slo import BREACH, INCONCLUSIVE, OK, Slo, Window
from migrate.router.state import StateStore

StartRouter = Callable[..., RunningRouter]
KEYED = {"Idempotency-Key": "payment-7f3a"}


def _posts(backend: EchoBackend) -> list[dict[str, object]]:
    return [seen for seen in backend.received if seen["method"] == "POST"]


def _weight(store: StateStore) -> int:
    return store.status()["billing"].read_weight


class TestCircuitBreaker:
    def test_a_failing_service_is_skipped_after_five_failures(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.status = 503
        store.set_weight("billing", 100, "ops", "all reads")
        router = start_router(breaker_cooldown=30)

        answers = [router.get(f"/invoices/{n}") for n in range(12)]

        assert {a.headers["X-Migrate-Backend"] for a in answers} == {"monolith"}
        assert len(billing.received) == 5
        assert router.get("/_router/stats").json()["breaker_skips"] == {"billing": 7}

    def test_after_the_cooldown_one_read_tries_the_service_again(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.status = 503
        store.set_weight("billing", 100, "ops", "all reads")
        router = start_router(breaker_cooldown=0.3)
        for n in range(5):
            router.get(f"/invoices/{n}")

        billing.status = 200
        time.sleep(0.4)
        answers = [router.get(f"/invoices/{n}").headers["X-Migrate-Backend"]
                   for n in range(3)]

        assert answers == ["billing", "billing", "billing"]
        assert router.router.breakers["billing"].state == "closed"


@pytest.fixture
def stalling(store: StateStore) -> Iterator[RawBackend]:
    backend = RawBackend()
    store.set_backend("billing", backend.url)
    store.set_weight("billing", 100, "ops", "all reads")
    yield backend
    backend.stop()


class TestStalledService:
    """A service that takes a read and never answers costs the read one
    upstream timeout, whatever the pool was doing, then the monolith answers."""

    def test_a_read_on_a_kept_alive_connection_waits_one_timeout(
        self, stalling: RawBackend, start_router: StartRouter
    ) -> None:
        router = start_router(upstream_timeout=1.0)
        assert router.backend_of("/invoices/1") == "billing"
        stalling.stall()

        started = time.monotonic()
        backend = router.backend_of("/invoices/2")
        took = time.monotonic() - started

        assert backend == "monolith"
        assert 0.9 < took < 1.5
        # Not sent again on a new connection: the stall was not a stale one.
        assert (stalling.connections, stalling.requests) == (1, 2)

    def test_waiting_for_a_free_connection_counts_against_the_timeout(
        self, stalling: RawBackend, start_router: StartRouter
    ) -> None:
        router = start_router(upstream_timeout=1.0, connections=1)
        stalling.stall()
        took: list[float] = []
        backends: list[str] = []

        def read(invoice: int) -> None:
            started = time.monotonic()
            with requests.Session() as session:
                answer = session.get(f"{router.url}/invoices/{invoice}", timeout=10)
            took.append(time.monotonic() - started)
            backends.append(answer.headers["X-Migrate-Backend"])

        readers = [threading.Thread(target=read, args=(n,)) for n in (1, 2)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(10)

        # Whether the second read reached the stalled backend once the first
        # gave its connection up depends on when each began; that neither
        # waited longer than one timeout does not.
        assert backends == ["monolith", "monolith"]
        assert max(took) < 1.5

    def test_a_kept_alive_connection_the_service_dropped_is_tried_again_at_once(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        dropping = RawBackend(one_per_connection=True)
        store.set_backend("billing", dropping.url)
        store.set_weight("billing", 100, "ops", "all reads")
        try:
            router = start_router(upstream_timeout=1.0)
            first = router.backend_of("/invoices/1")

            started = time.monotonic()
            second = router.backend_of("/invoices/2")
            took = time.monotonic() - started
        finally:
            dropping.stop()

        assert (first, second) == ("billing", "billing")
        assert took < 0.5
        assert (dropping.connections, dropping.requests) == (2, 3)


class TestWriteRetries:
    def test_a_keyed_write_is_sent_again_until_it_succeeds(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        store.set_writer("billing", "billing", "ops", "flip")
        billing.fail_next = 2
        router = start_router()

        answer = router.post("/invoices/42/payments", json={"amount": "1.00"},
                             headers=KEYED)

        assert answer.status_code == 200
        posts = _posts(billing)
        assert len(posts) == 3
        assert {p["headers"]["Idempotency-Key"] for p in posts} == {  # type: ignore[index]
            "payment-7f3a"
        }
        assert router.get("/_router/stats").json()["write_retries"] == {"billing": 2}

    def test_a_write_without_a_key_is_never_sent_twice(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        store.set_writer("billing", "billing", "ops", "flip")
        billing.fail_next = 1
        router = start_router()

        answer = router.post("/invoices/42/payments", json={"amount": "1.00"})

        assert answer.status_code == 503
        assert len(_posts(billing)) == 1

    def test_a_lasting_not_writer_refusal_of_a_keyed_write_ends_at_the_hold(
        self, monolith: EchoBackend, start_router: StartRouter
    ) -> None:
        monolith.refuse_writes = True
        router = start_router(hold_timeout=0.3, retry_timeout=30)

        started = time.monotonic()
        answer = router.post("/invoices/42/payments", headers=KEYED)

        assert answer.status_code == 503
        assert answer.headers["X-Migrate-Not-Writer"] == "billing"
        assert time.monotonic() - started < 5

    def test_a_keyed_write_to_a_writer_that_stays_down_gets_502(
        self, store: StateStore, monolith: EchoBackend, start_router: StartRouter
    ) -> None:
        store.set_backend("billing", f"http://127.0.0.1:{closed_port()}")
        store.set_writer("billing", "billing", "ops", "flip")
        router = start_router(retry_timeout=0.4)

        answer = router.post("/invoices/42/payments", headers=KEYED)

        assert answer.status_code == 502
        assert _posts(monolith) == []

    def test_a_keyed_write_reaches_a_writer_that_comes_back(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        port = closed_port()
        store.set_backend("billing", f"http://127.0.0.1:{port}")
        store.set_writer("billing", "billing", "ops", "flip")
        router = start_router(retry_timeout=10)
        late = EchoBackend("billing")
        starting = threading.Timer(0.5, late.server.start, kwargs={"port": port})
        starting.start()

        answer = router.post("/invoices/42/payments", headers=KEYED)

        starting.join()
        late.server.stop()

        assert answer.status_code == 200
        assert len(_posts(late)) == 1


class TestSlo:
    def test_an_error_rate_breach_sets_the_weight_to_zero_with_the_reason(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.status = 500
        store.set_slo("billing", Slo(0.1, 500, 10, 5), "ops", "guard")
        store.set_weight("billing", 100, "ops", "all reads")
        router = start_router(slo_interval=0.05, breaker_failures=1000)

        answers = [router.get(f"/invoices/{n}").status_code for n in range(6)]

        assert answers == [200] * 6
        assert eventually(lambda: _weight(store) == 0)
        last = [e for e in store.history("billing") if e.what != "phase"][-1]
        assert (last.actor, last.what, last.before, last.after) == (
            "router", "read_weight", "100", "0",
        )
        assert last.reason.startswith("SLO breach: error rate 100.00% (6 of 6)")

    def test_a_latency_breach_sets_the_weight_to_zero(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.delay = 0.1
        store.set_slo("billing", Slo(0.5, 20, 10, 3), "ops", "guard")
        store.set_weight("billing", 100, "ops", "all reads")
        router = start_router(slo_interval=0.05)

        for n in range(4):
            router.get(f"/invoices/{n}")

        assert eventually(lambda: _weight(store) == 0)
        assert "p99" in store.history("billing")[-1].reason

    def test_too_few_requests_neither_roll_back_nor_pass(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.status = 500
        store.set_slo("billing", Slo(0.1, 500, 10, 20), "ops", "guard")
        store.set_weight("billing", 100, "ops", "all reads")
        router = start_router(slo_interval=0.05)

        for n in range(5):
            router.get(f"/invoices/{n}")
        time.sleep(0.3)

        verdict = router.router.verdict("billing")
        assert verdict is not None and verdict.kind == INCONCLUSIVE
        assert _weight(store) == 100

    def test_healthy_traffic_is_judged_ok_and_keeps_the_weight(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.set_slo("billing", Slo(0.01, 500, 10, 5), "ops", "guard")
        store.set_weight("billing", 100, "ops", "all reads")
        router = start_router(slo_interval=0.05)

        for n in range(10):
            router.get(f"/invoices/{n}")
        time.sleep(0.2)

        verdict = router.router.verdict("billing")
        assert verdict is not None and verdict.kind == OK
        assert _weight(store) == 100

    def test_without_an_slo_failures_never_move_the_weight(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.status = 500
        store.set_weight("billing", 100, "ops", "all reads")
        router = start_router(slo_interval=0.05)

        for n in range(10):
            router.get(f"/invoices/{n}")
        time.sleep(0.3)

        assert _weight(store) == 100


class TestWindow:
    def test_an_empty_window_is_inconclusive(self) -> None:
        verdict = Window().judge(Slo(0.01, 100, 30, 1), now=1000.0)

        assert verdict.kind == INCONCLUSIVE
        assert verdict.requests == 0

    def test_old_requests_fall_out_of_the_window(self) -> None:
        window = Window()
        for second in range(100):
            window.record(1000.0 + second, None)

        verdict = window.judge(Slo(0.5, 100, 10, 5), now=2000.0)

        assert verdict.kind == INCONCLUSIVE

    @pytest.mark.parametrize(
        ("latencies", "failures", "kind"),
        [([0.01] * 99 + [0.05], 0, OK), ([0.01] * 90 + [0.3] * 10, 0, BREACH),
         ([0.01] * 98, 2, BREACH), ([0.01] * 99, 1, OK)],
    )
    def test_a_window_judges_errors_and_p99(
        self, latencies: list[float], failures: int, kind: str
    ) -> None:
        window = Window()
        for n, seconds in enumerate(latencies):
            window.record(1000.0 + n % 10, seconds)
        for _ in range(failures):
            window.record(1005.0, None)

        assert window.judge(Slo(0.01, 100, 30, 50), now=1010.0).kind == kind


class TestReplicaMisses:
    def test_a_read_the_lagging_service_cannot_find_is_answered_by_the_writer(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.reply = lambda seen: (404, {"error": "invoice_not_found"})
        store.set_weight("billing", 100, "ops", "all reads")
        router = start_router()

        answer = router.get("/invoices/9001")

        assert answer.status_code == 200
        assert answer.headers["X-Migrate-Backend"] == "monolith"
        assert router.get("/_router/stats").json()["replica_misses"] == {
            "billing": 1
        }

    def test_a_lagging_monolith_replica_hands_a_miss_to_the_service(
        self,
        store: StateStore,
        monolith: EchoBackend,
        billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.reply = lambda seen: (404, {"error": "invoice_not_found"})
        store.set_writer("billing", "billing", "ops", "flip")
        router = start_router()

        answer = router.get("/invoices/9001")

        assert answer.status_code == 200
        assert answer.headers["X-Migrate-Backend"] == "billing"

    def test_the_writer_s_own_404_is_the_answer(
        self,
        store: StateStore,
        monolith: EchoBackend,
        billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.reply = lambda seen: (404, {"error": "invoice_not_found"})
        billing.reply = lambda seen: (404, {"error": "invoice_not_found"})
        store.set_weight("billing", 100, "ops", "all reads")
        router = start_router()

        answer = router.get("/invoices/9001")

        assert answer.status_code == 404
        assert answer.json() == {"error": "invoice_not_found"}
        assert [seen["backend"] for seen in monolith.received] == ["monolith"]


class TestLatency:
    def test_answers_are_timed_per_route_group_and_backend(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.delay = 0.03
        store.set_weight("billing", 100, "ops", "all reads")
        router = start_router()

        for n in range(4):
            router.get(f"/invoices/{n}")
        router.get("/orders/1")

        latency = router.get("/_router/stats").json()["latency"]
        served = latency["billing"]["billing"]
        assert served["count"] == 4
        assert served["errors"] == 0
        assert served["p50_ms"] == 50.0
        assert served["buckets"]["0.025"] == 0
        assert served["buckets"]["+Inf"] == 4
        assert latency["(unmatched)"]["monolith"]["count"] == 1

    def test_server_errors_count_against_the_backend_that_answered(
        self, store: StateStore, monolith: EchoBackend, start_router: StartRouter
    ) -> None:
        monolith.status = 503
        router = start_router()

        router.get("/orders/1")

        latency = router.get("/_router/stats").json()["latency"]
        assert latency["(unmatched)"]["monolith"]["errors"] == 1
