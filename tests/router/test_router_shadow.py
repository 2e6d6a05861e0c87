"""Shadow traffic: copies to the other side, compared, counted once each."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from router_servers import EchoBackend, RunningRouter, eventually

from migrate.router.errors import InvalidSetting, UnknownRoute
from migrate.router.shadow import (
    DIFFERENT,
    IGNORED,
    SAME,
    Observed,
    Rules,
    differences,
    outcome,
)
from migrate.router.state import StateStore

ROUTE = "GET /invoices/<int:invoice_id>"
StartRouter = Callable[..., RunningRouter]


def _invoice(total: str = "12.50", **extra: Any) -> Callable[[dict[str, Any]], tuple]:
    return lambda seen: (200, {"invoice_id": 42, "total": total, **extra})


def _counts(router: RunningRouter, route: str = ROUTE) -> dict[str, int]:
    shadow = router.get("/_router/stats").json()["shadow"]
    counts: dict[str, int] = shadow.get(route, {})
    return counts


def _settled(router: RunningRouter, total: int, route: str = ROUTE) -> dict[str, int]:
    def done() -> bool:
        counts = _counts(router, route)
        return sum(counts.values()) >= total

    assert eventually(done), _counts(router, route)
    return _counts(router, route)


def _copies(backend: EchoBackend) -> list[dict[str, Any]]:
    return [s for s in backend.received if "X-Migrate-Shadow" in s["headers"]]


class TestCounting:
    def test_equal_answers_count_as_same(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.reply = billing.reply = _invoice()
        store.set_shadow("billing", 100, "ops", "compare")
        router = start_router()

        for _ in range(3):
            router.get("/invoices/42")

        assert _settled(router, 3)[SAME] == 3

    def test_a_different_field_counts_once_as_different(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.reply = _invoice("12.50", status="issued", lines=3)
        billing.reply = _invoice("99.00", status="paid", lines=4)
        store.set_shadow("billing", 100, "ops", "compare")
        router = start_router()

        router.get("/invoices/42")

        counts = _settled(router, 1)
        samples = router.router.stats.shadow_samples
        assert counts[DIFFERENT] == 1
        assert sum(counts.values()) == 1
        assert samples[-1]["differences"] == ["$.lines", "$.status", "$.total"]

    def test_a_difference_under_an_ignored_path_counts_as_ignored(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.reply = _invoice(generated_at="2026-12-01T10:00:00")
        billing.reply = _invoice(generated_at="2026-12-01T10:00:07")
        store.set_shadow("billing", 100, "ops", "compare",
                         ignore_paths=["$.generated_at"])
        router = start_router()

        router.get("/invoices/42")

        assert _settled(router, 1)[IGNORED] == 1

    def test_a_status_difference_counts_as_different_even_if_ignored(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.reply = lambda seen: (200, {"when": "a"})
        billing.reply = lambda seen: (404, {"when": "b"})
        store.set_shadow("billing", 100, "ops", "compare", ignore_paths=["$"])
        router = start_router()

        router.get("/invoices/42")

        # The body differs too, but under the ignored root: the status alone
        # makes the difference.
        assert _settled(router, 1)[DIFFERENT] == 1
        assert router.router.stats.shadow_samples[-1]["differences"] == ["status"]

    def test_date_and_server_are_never_compared(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.reply = lambda seen: (200, {"a": 1}, {
            "Date": "Tue, 01 Dec 2026 10:00:00 GMT", "Server": "waitress"})
        billing.reply = lambda seen: (200, {"a": 1}, {
            "Date": "Tue, 01 Dec 2026 10:00:09 GMT", "Server": "nameko"})
        store.set_shadow("billing", 100, "ops", "compare")
        router = start_router()

        router.get("/invoices/42")

        # Not even ignored: those headers are left out of the comparison.
        assert _settled(router, 1)[SAME] == 1

    def test_an_ignored_header_such_as_date_is_not_a_difference(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.reply = lambda seen: (200, {"a": 1}, {"X-Request-Id": "m-1"})
        billing.reply = lambda seen: (200, {"a": 1}, {"X-Request-Id": "b-9"})
        store.set_shadow("billing", 100, "ops", "compare",
                         ignore_headers=["X-Request-Id"])
        router = start_router()

        router.get("/invoices/42")

        # Date and Server differ between the two servers by nature.
        assert _settled(router, 1)[IGNORED] == 1

    def test_an_unreachable_candidate_counts_as_candidate_error(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        from router_servers import closed_port

        store.set_backend("billing", f"http://127.0.0.1:{closed_port()}")
        store.set_shadow("billing", 100, "ops", "compare")
        router = start_router()

        answer = router.get("/invoices/42")

        assert answer.status_code == 200
        assert _settled(router, 1)["candidate_error"] == 1

    def test_a_share_of_requests_is_copied(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter,
    ) -> None:
        store.set_shadow("billing", 30, "ops", "sample")
        router = start_router()

        for n in range(200):
            router.get(f"/invoices/{n}")

        assert eventually(lambda: sum(_counts(router).values()) >= 30)
        time.sleep(0.2)
        assert 25 <= len(_copies(billing)) <= 95


class TestCopies:
    def test_a_copy_keeps_host_and_forwarded_for_and_is_marked(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        store.set_shadow("billing", 100, "ops", "compare")
        router = start_router()

        router.get("/invoices/42", headers={"Host": "shop.example",
                                            "X-Forwarded-For": "203.0.113.7"})

        assert eventually(lambda: len(_copies(billing)) == 1)
        primary = monolith.received[0]["headers"]
        copy = _copies(billing)[0]["headers"]
        assert copy["Host"] == primary["Host"] == "shop.example"
        assert copy["X-Forwarded-For"] == primary["X-Forwarded-For"] == (
            "203.0.113.7, 127.0.0.1"
        )
        assert copy["X-Migrate-Shadow"] == "1"
        assert "X-Migrate-Shadow" not in primary

    def test_at_full_weight_the_copy_goes_to_the_monolith(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        store.set_weight("billing", 100, "ops", "all reads")
        store.set_shadow("billing", 100, "ops", "compare")
        router = start_router()

        answer = router.get("/invoices/42")

        assert answer.headers["X-Migrate-Backend"] == "billing"
        assert eventually(lambda: len(_copies(monolith)) == 1)

    def test_a_slow_candidate_never_delays_the_answer(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter,
    ) -> None:
        billing.delay = 1.0
        store.set_shadow("billing", 100, "ops", "compare")
        router = start_router()

        started = time.monotonic()
        answer = router.get("/invoices/42")
        took = time.monotonic() - started

        assert answer.headers["X-Migrate-Backend"] == "monolith"
        assert took < 0.5

    def test_a_slow_copy_and_a_slow_request_in_flight_never_delay_a_stop(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        billing.delay = 3.0
        store.set_shadow("billing", 100, "ops", "compare")
        store.set_weight("billing", 100, "ops", "slow reads",
                         route="GET /customers/<customer_id>/invoices")
        router = start_router()
        loop = router.thread.loop
        connect = loop.create_connection
        copy_connected = threading.Event()

        async def connect_on_a_loaded_machine(
            factory: Any, host: str, port: int, **options: Any
        ) -> Any:
            made = await connect(factory, host, port, **options)
            if port == billing.server.port and not copy_connected.is_set():
                copy_connected.set()
                # The loop's thread is held up, as a busy machine holds it,
                # so the stop arrives the instant the copy's connection is
                # made: the moment a single cancel can be lost in.
                time.sleep(0.3)
            return made

        with socket.create_connection(("127.0.0.1", router.port)) as client:
            client.sendall(b"GET /customers/7/invoices HTTP/1.1\r\n"
                           b"Host: shop.example\r\n\r\n")
            assert eventually(lambda: len(billing.received) == 1)
            monkeypatch.setattr(loop, "create_connection",
                                connect_on_a_loaded_machine)
            router.get("/invoices/42")
            assert copy_connected.wait(5)

            started = time.monotonic()
            router.thread.call(router.running.stop(), timeout=10)
            took = time.monotonic() - started

        assert took < 2

    def test_copies_beyond_a_full_queue_are_dropped_and_counted(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter,
    ) -> None:
        billing.delay = 0.5
        store.set_shadow("billing", 100, "ops", "compare")
        router = start_router(shadow_queue=2, shadow_workers=1)

        for n in range(12):
            router.get(f"/invoices/{n}")

        counts = _counts(router)
        assert counts["dropped"] >= 8
        assert counts["dropped"] + len(billing.received) <= 12 + 1

    def test_a_write_is_not_copied_unless_its_route_is_safe(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter,
    ) -> None:
        store.set_shadow("billing", 100, "ops", "compare")
        router = start_router()

        router.post("/invoices/42/payments", json={"amount": "1.00"})
        time.sleep(0.3)

        assert _copies(billing) == []

    def test_a_write_of_a_safe_route_is_copied(
        self, store: StateStore, billing: EchoBackend, start_router: StartRouter,
    ) -> None:
        write = "POST /invoices/<int:invoice_id>/payments"
        store.set_shadow("billing", 100, "ops", "compare", safe_writes=[write])
        router = start_router()

        router.post("/invoices/42/payments", json={"amount": "1.00"})

        assert eventually(lambda: len(_copies(billing)) == 1)
        assert _copies(billing)[0]["body"] == '{"amount": "1.00"}'
        assert _settled(router, 1, write)


class TestNoise:
    @staticmethod
    def _stamped(prefix: str) -> Callable[[dict[str, Any]], tuple]:
        numbers = itertools.count()
        return lambda seen: (200, {"total": "12.50",
                                   "generated_at": f"{prefix}-{next(numbers)}"})

    def test_a_field_that_changes_on_its_own_is_noise_when_cancelling(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.reply = self._stamped("m")
        billing.reply = self._stamped("b")
        store.set_shadow("billing", 100, "ops", "compare", noise=True)
        router = start_router()

        router.get("/invoices/42")

        assert _settled(router, 1)[IGNORED] == 1
        assert len(monolith.received) == 2

    def test_the_same_field_is_a_difference_without_cancelling(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        monolith.reply = self._stamped("m")
        billing.reply = self._stamped("b")
        store.set_shadow("billing", 100, "ops", "compare")
        router = start_router()

        router.get("/invoices/42")

        assert _settled(router, 1)[DIFFERENT] == 1

    def test_a_status_difference_counts_even_where_the_status_is_noise(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        # The primary answers 200, then 503 to the second call for noise:
        # its status changes on its own, yet the candidate's 404 counts.
        statuses = itertools.cycle([200, 503])
        monolith.reply = lambda seen: (next(statuses), {"total": "12.50"})
        billing.reply = lambda seen: (404, {"total": "12.50"})
        store.set_shadow("billing", 100, "ops", "compare", noise=True)
        router = start_router()

        answer = router.get("/invoices/42")

        assert answer.status_code == 200
        assert _settled(router, 1)[DIFFERENT] == 1
        assert router.router.stats.shadow_samples[-1]["differences"] == ["status"]
        assert len(monolith.received) == 2

    def test_a_real_difference_stands_out_of_the_noise(
        self, store: StateStore, monolith: EchoBackend, billing: EchoBackend,
        start_router: StartRouter,
    ) -> None:
        numbers = itertools.count()
        monolith.reply = lambda seen: (200, {"total": "12.50",
                                             "at": next(numbers)})
        billing.reply = lambda seen: (200, {"total": "12.51", "at": -1})
        store.set_shadow("billing", 100, "ops", "compare", noise=True)
        router = start_router()

        router.get("/invoices/42")

        assert _settled(router, 1)[DIFFERENT] == 1
        assert router.router.stats.shadow_samples[-1]["differences"] == ["$.total"]


class TestComparison:
    def _observed(self, body: bytes, status: int = 200) -> Observed:
        return Observed(status, {}, body)

    def test_json_bodies_compare_leaf_by_leaf_whatever_the_key_order(self) -> None:
        left = self._observed(b'{"a": 1, "b": [1, 2]}')
        right = self._observed(b'{"b": [1, 2],  "a": 1}')

        assert differences(left, right) == set()

    def test_a_missing_field_is_a_difference_at_its_path(self) -> None:
        left = self._observed(b'{"lines": [{"qty": 1, "sku": "a"}]}')
        right = self._observed(b'{"lines": [{"qty": 1}]}')

        assert differences(left, right) == {"$.lines[0].sku"}

    @pytest.mark.parametrize(
        ("rule", "path", "ignored"),
        [
            ("$.generated_at", "$.generated_at", True),
            ("$.generated_at", "$.generated_at_x", False),
            ("$.lines[*].updated", "$.lines[3].updated", True),
            ("$.lines[0]", "$.lines[0].sku", True),
            ("$.lines[0]", "$.lines[1].sku", False),
            ("$..etag", "$.a.b[2].etag", True),
            ("$..etag", "$.etag", True),
            ("$.*.id", "$.customer.id", True),
        ],
    )
    def test_ignore_paths_match_as_documented(
        self, rule: str, path: str, ignored: bool
    ) -> None:
        assert Rules([rule]).ignores(path) is ignored

    def test_a_status_difference_is_never_ignored_nor_noise(self) -> None:
        found = outcome(self._observed(b'{"a": 1}', 200),
                        self._observed(b'{"a": 2}', 404),
                        Rules(["$"], ["status"]), noise={"status", "$.a"})

        assert found == (DIFFERENT, ("status",))

    def test_date_and_server_headers_are_left_out_of_the_differences(self) -> None:
        primary = Observed(200, {"date": "Tue, 01 Dec 2026 10:00:00 GMT",
                                 "server": "waitress", "etag": '"1"'}, b"{}")
        candidate = Observed(200, {"date": "Tue, 01 Dec 2026 10:00:09 GMT",
                                   "server": "nameko", "etag": '"2"'}, b"{}")

        assert differences(primary, candidate) == {"header:etag"}

    def test_non_json_bodies_compare_byte_for_byte(self) -> None:
        found = outcome(self._observed(b"<p>a</p>"), self._observed(b"<p>b</p>"),
                        Rules())

        assert found == (DIFFERENT, ("body",))

    def test_a_malformed_ignore_path_is_refused(self, store: StateStore) -> None:
        with pytest.raises(InvalidSetting, match="is not .field"):
            store.set_shadow("billing", 10, "ops", "typo", ignore_paths=["$.a b"])

    def test_only_a_write_route_of_the_context_can_be_marked_safe(
        self, store: StateStore
    ) -> None:
        with pytest.raises(UnknownRoute):
            store.set_shadow("billing", 10, "ops", "typo", safe_writes=[ROUTE])
