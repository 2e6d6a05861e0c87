"""The router over real sockets: two echo backends, a store, a running router."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from router_servers import (
    EchoBackend,
    RunningRouter,
    closed_port,
    echoed,
    expected_big_body,
)

from migrate.router.buckets import goes_to_service
from migrate.router.state import StateStore

StartRouter = Callable[..., RunningRouter]


def _eventually(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def _posts(backend: EchoBackend) -> list[dict[str, Any]]:
    return [seen for seen in backend.received if seen["method"] == "POST"]


class _InBackground:
    """A request sent from another thread, so the test can watch it wait."""

    def __init__(self, send: Callable[[], requests.Response]):
        self.response: requests.Response | None = None
        self._thread = threading.Thread(target=self._run, args=(send,))
        self._thread.start()

    def _run(self, send: Callable[[], requests.Response]) -> None:
        self.response = send()

    @property
    def waiting(self) -> bool:
        return self._thread.is_alive()

    def result(self) -> requests.Response:
        self._thread.join(30)
        assert self.response is not None
        return self.response


class TestRouting:
    def test_a_matched_read_at_full_weight_goes_to_the_service(
        self, store: StateStore, router: RunningRouter
    ) -> None:
        store.set_weight("billing", 100, "test", "all reads")

        assert _eventually(lambda: router.backend_of("/invoices/42") == "billing")
        assert echoed(router.get("/invoices/42"))["path"] == "/invoices/42"

    def test_an_unmatched_request_goes_to_the_monolith(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.set_weight("billing", 100, "test", "all reads")
        router = start_router()

        assert router.backend_of("/orders/42") == "monolith"
        assert router.backend_of("/invoices/not-a-number") == "monolith"

    def test_the_most_specific_route_owns_a_path(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        store.set_backend("reports", billing.url)
        summary = [("GET", "/invoices/summary", None)]
        store.register_routes("reports", "reports", summary)
        store.set_weight("reports", 100, "test", "all reads")
        store.set_weight("billing", 100, "test", "all reads")
        router = start_router()

        assert router.backend_of("/invoices/summary") == "reports"
        assert router.backend_of("/invoices/7") == "billing"

    def test_the_query_string_and_body_reach_the_backend(
        self, router: RunningRouter
    ) -> None:
        response = router.post("/orders/a%2Fb?expand=lines&x=%2F", data=b"order")

        seen = echoed(response)
        assert (seen["target"], seen["body"]) == (
            "/orders/a%2Fb?expand=lines&x=%2F", "order",
        )


class TestReadWeights:
    def test_weight_zero_keeps_every_read_on_the_monolith(
        self, router: RunningRouter
    ) -> None:
        sides = {router.backend_of(f"/invoices/{n}") for n in range(40)}

        assert sides == {"monolith"}

    def test_weight_fifty_splits_reads_by_their_key(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.set_weight("billing", 50, "test", "half")
        router = start_router()
        ids = [str(n) for n in range(120)]

        sides = {i: router.backend_of(f"/invoices/{i}") for i in ids}

        expected = {
            i: "billing" if goes_to_service(50, "billing", i) else "monolith"
            for i in ids
        }
        assert sides == expected
        assert set(sides.values()) == {"billing", "monolith"}

    def test_a_key_sticks_to_its_side(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.set_weight("billing", 50, "test", "half")
        router = start_router()

        for customer in ("c-1", "c-2", "c-3", "c-4", "c-5", "c-6"):
            path = f"/customers/{customer}/invoices"
            assert len({router.backend_of(path) for _ in range(10)}) == 1

    def test_weight_hundred_sends_every_read_to_the_service(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.set_weight("billing", 100, "test", "all reads")
        router = start_router()

        sides = {router.backend_of(f"/invoices/{n}") for n in range(40)}

        assert sides == {"billing"}

    def test_a_read_without_a_key_stays_on_the_monolith_below_100(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.register_routes(
            "billing", "billing", [("GET", "/invoices/<int:invoice_id>", None)]
        )
        store.set_weight("billing", 99, "test", "almost all")
        router = start_router()

        sides = {router.backend_of(f"/invoices/{n}") for n in range(20)}

        assert sides == {"monolith"}

    def test_a_weight_change_reaches_the_running_router(
        self, store: StateStore, router: RunningRouter
    ) -> None:
        assert router.backend_of("/invoices/42") == "monolith"

        store.set_weight("billing", 100, "test", "all reads")

        assert _eventually(lambda: router.backend_of("/invoices/42") == "billing")
        health = router.get("/_router/health").json()
        assert health == {"status": "ok", "revision": store.revision()}

    def test_a_new_revision_is_logged_once(
        self,
        store: StateStore,
        router: RunningRouter,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.INFO, logger="migrate.router.proxy")

        store.set_weight("billing", 25, "test", "canary")

        revision = store.revision()
        assert _eventually(
            lambda: router.get("/_router/health").json()["revision"] == revision
        )
        lines = [r.getMessage() for r in caplog.records]
        expected = (
            f"routing table at revision {revision} (was {revision - 1}): "
            "billing reads 0 % -> 25 %; billing phase extracted -> shifting reads"
        )
        assert [line for line in lines if "revision" in line] == [expected]


class TestWrites:
    def test_a_write_goes_to_the_writer_whatever_the_weight(
        self,
        store: StateStore,
        monolith: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        store.set_weight("billing", 100, "test", "all reads")
        router = start_router()

        response = router.post("/invoices/42/payments", json={"amount": "10.00"})

        assert response.headers["X-Migrate-Backend"] == "monolith"
        assert echoed(response)["body"] == '{"amount": "10.00"}'
        assert len(_posts(monolith)) == 1

    def test_writes_follow_a_change_of_writer(
        self, store: StateStore, router: RunningRouter
    ) -> None:
        store.set_writer("billing", "billing", "test", "flip")

        assert _eventually(
            lambda: router.post("/invoices/42/payments").headers["X-Migrate-Backend"]
            == "billing"
        )

    def test_a_held_write_waits_then_goes_to_the_new_writer(
        self,
        store: StateStore,
        monolith: EchoBackend,
        billing: EchoBackend,
        router: RunningRouter,
    ) -> None:
        store.hold_writes("billing", True, "test", "fence")
        assert _eventually(
            lambda: router.get("/_router/health").json()["revision"]
            == store.revision()
        )

        write = _InBackground(lambda: router.post("/invoices/42/payments"))
        time.sleep(0.5)
        assert write.waiting
        assert _posts(monolith) == _posts(billing) == []

        store.set_writer("billing", "billing", "test", "flip")
        store.hold_writes("billing", False, "test", "flipped")

        assert write.result().headers["X-Migrate-Backend"] == "billing"
        assert _posts(monolith) == []
        assert len(_posts(billing)) == 1

    def test_a_write_still_held_at_the_timeout_is_refused(
        self,
        store: StateStore,
        monolith: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        store.hold_writes("billing", True, "test", "fence")
        router = start_router(hold_timeout=0.3)

        response = router.post("/invoices/42/payments")

        assert response.status_code == 503
        assert response.json()["error"] == "writes_held"
        assert response.headers["X-Migrate-Backend"] == "router"
        assert _posts(monolith) == []

    def test_a_not_writer_refusal_is_sent_again_to_the_new_writer(
        self,
        store: StateStore,
        monolith: EchoBackend,
        billing: EchoBackend,
        router: RunningRouter,
    ) -> None:
        # The monolith was fenced and the flip lands as it refuses.
        monolith.refuse_writes = True
        monolith.on_write = lambda: store.set_writer(
            "billing", "billing", "test", "flip"
        )

        response = router.post("/invoices/42/payments", json={"amount": "5.00"})

        assert response.status_code == 200
        assert response.headers["X-Migrate-Backend"] == "billing"
        assert len(_posts(monolith)) == 1
        assert echoed(response)["body"] == '{"amount": "5.00"}'
        stats = router.get("/_router/stats").json()
        assert stats["not_writer_retries"] == {"billing": 1}

    def test_a_lasting_not_writer_refusal_reaches_the_client(
        self,
        monolith: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.refuse_writes = True
        router = start_router(hold_timeout=0.4)

        response = router.post("/invoices/42/payments")

        assert response.status_code == 503
        assert response.headers["X-Migrate-Not-Writer"] == "billing"
        assert response.headers["X-Migrate-Backend"] == "monolith"

    def test_a_failed_write_is_not_sent_anywhere_else(
        self,
        store: StateStore,
        monolith: EchoBackend,
        billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        store.set_writer("billing", "billing", "test", "flip")
        billing.status = 500
        router = start_router()

        response = router.post("/invoices/42/payments")

        assert response.status_code == 500
        assert response.headers["X-Migrate-Backend"] == "billing"
        assert len(_posts(billing)) == 1
        assert _posts(monolith) == []

    def test_an_unreachable_writer_gets_a_502_and_no_other_backend(
        self,
        store: StateStore,
        monolith: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        store.set_backend("billing", f"http://127.0.0.1:{closed_port()}")
        store.set_writer("billing", "billing", "test", "flip")
        router = start_router()

        response = router.post("/invoices/42/payments")

        assert response.status_code == 502
        assert response.json()["error"] == "backend_unavailable"
        assert _posts(monolith) == []


class TestReadFallback:
    def test_a_read_from_an_unreachable_service_falls_back_to_the_monolith(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.set_backend("billing", f"http://127.0.0.1:{closed_port()}")
        store.set_weight("billing", 100, "test", "all reads")
        router = start_router()

        response = router.get("/invoices/42")

        assert response.status_code == 200
        assert response.headers["X-Migrate-Backend"] == "monolith"
        assert router.get("/_router/stats").json()["fallbacks"] == {"billing": 1}

    def test_a_read_the_service_fails_with_a_5xx_falls_back(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.status = 503
        store.set_weight("billing", 100, "test", "all reads")
        router = start_router()

        response = router.get("/invoices/42")

        assert response.status_code == 200
        assert response.headers["X-Migrate-Backend"] == "monolith"
        assert len(billing.received) == 1

    def test_a_read_the_service_answers_too_slowly_falls_back(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.delay = 1.0
        store.set_weight("billing", 100, "test", "all reads")
        router = start_router(upstream_timeout=0.3)

        response = router.get("/invoices/42")

        assert response.headers["X-Migrate-Backend"] == "monolith"

    def test_a_4xx_from_the_service_is_its_answer(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter
    ) -> None:
        billing.status = 422
        store.set_weight("billing", 100, "test", "all reads")
        router = start_router()

        response = router.get("/invoices/42")

        assert response.status_code == 422
        assert response.headers["X-Migrate-Backend"] == "billing"


class TestProxying:
    def test_x_forwarded_for_gets_the_client_appended(
        self, router: RunningRouter
    ) -> None:
        response = router.get("/orders", headers={"X-Forwarded-For": "203.0.113.7"})

        headers = echoed(response)["headers"]
        assert headers["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"

    def test_the_client_host_is_kept_and_forwarded(
        self, router: RunningRouter
    ) -> None:
        response = router.get("/orders", headers={"Host": "shop.example"})

        headers = echoed(response)["headers"]
        assert headers["Host"] == "shop.example"
        assert headers["X-Forwarded-Host"] == "shop.example"
        assert headers["X-Forwarded-Proto"] == "http"

    def test_hop_by_hop_request_headers_are_dropped(
        self, router: RunningRouter
    ) -> None:
        sent = {
            "Connection": "keep-alive, X-Session-Hop",
            "X-Session-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Trailer": "X-Checksum",
            "Proxy-Authorization": "Basic cm91dGVyOnNlY3JldA==",
            "X-Kept": "yes",
        }

        headers = echoed(router.get("/orders", headers=sent))["headers"]

        lowered = {name.lower() for name in headers}
        dropped = {"x-session-hop", "keep-alive", "te", "trailer",
                   "proxy-authorization"}
        assert lowered & dropped == set()
        assert headers["X-Kept"] == "yes"

    def test_hop_by_hop_response_headers_are_dropped(
        self, monolith: EchoBackend, router: RunningRouter
    ) -> None:
        monolith.extra_headers = {
            "Proxy-Authenticate": "Basic",
            "Trailer": "X-Checksum",
            "X-Kept": "yes",
        }

        response = router.get("/orders")

        assert "Proxy-Authenticate" not in response.headers
        assert "Trailer" not in response.headers
        assert response.headers["X-Kept"] == "yes"

    def test_a_body_over_the_limit_is_refused_before_any_backend(
        self, monolith: EchoBackend, start_router: StartRouter
    ) -> None:
        router = start_router(max_body=1000)

        response = router.post("/orders", data=b"x" * 2000)

        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"
        assert monolith.received == []

    def test_a_chunked_body_over_the_limit_is_refused(
        self, monolith: EchoBackend, start_router: StartRouter
    ) -> None:
        router = start_router(max_body=1000)

        response = router.post("/orders", data=iter([b"x" * 600, b"y" * 600]))

        assert response.status_code == 413
        assert monolith.received == []

    def test_a_large_response_arrives_whole(self, router: RunningRouter) -> None:
        response = router.get("/big/1000000")

        assert response.status_code == 200
        assert response.content == expected_big_body(1_000_000)

    def test_a_head_request_keeps_the_declared_length(
        self, router: RunningRouter
    ) -> None:
        response = router.session.head(router.url + "/fixed/1234", timeout=30)

        assert response.status_code == 200
        assert response.content == b""
        assert response.headers["Content-Length"] == "1234"

    @pytest.mark.parametrize("status", [204, 304])
    def test_an_answer_without_a_body_passes_through(
        self, router: RunningRouter, status: int
    ) -> None:
        response = router.get(f"/status/{status}")

        assert response.status_code == status
        assert response.content == b""
        assert response.headers["ETag"] == '"v1"'
        assert response.headers["X-Migrate-Backend"] == "monolith"


class TestAdmin:
    def test_health_answers_with_the_revision(
        self, store: StateStore, router: RunningRouter
    ) -> None:
        response = router.get("/_router/health")

        assert response.status_code == 200
        assert response.json() == {"status": "ok", "revision": store.revision()}
        assert response.headers["X-Migrate-Backend"] == "router"

    def test_stats_count_requests_per_context_and_backend(
        self, monolith: EchoBackend, router: RunningRouter
    ) -> None:
        router.get("/invoices/1")
        router.get("/invoices/2")
        router.get("/orders")

        stats = router.get("/_router/stats").json()

        assert stats["requests"] == {
            "billing": {"monolith": 2},
            "(unmatched)": {"monolith": 1},
        }
        assert len(monolith.received) == 3


class TestFinishedContext:
    """The monolith no longer hosts a finished context: no fallback to it."""

    @staticmethod
    def _finish(store: StateStore) -> None:
        store.set_writer("billing", "billing", "test", "writes moved")
        store.set_weight("billing", 100, "test", "every read")
        store.set_finished("billing", "test", "the monolith no longer hosts it")

    def test_every_read_goes_to_the_service_whatever_the_weight(
        self, store: StateStore, monolith: EchoBackend, start_router: StartRouter
    ) -> None:
        self._finish(store)
        store.set_weight("billing", 0, "test", "an SLO breach, say")
        router = start_router()

        response = router.get("/invoices/42")

        assert response.headers["X-Migrate-Backend"] == "billing"
        assert monolith.received == []

    def test_a_read_the_service_fails_is_a_502_not_the_monolith(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        self._finish(store)
        billing.status = 503
        router = start_router()

        response = router.get("/invoices/42")

        assert response.status_code == 502
        assert response.json()["error"] == "backend_unavailable"
        assert "billing is finished" in response.json()["message"]
        assert monolith.received == []
