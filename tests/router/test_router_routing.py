"""Keys from paths, headers and cookies; route weights; golden buckets.

The golden vectors below pin, for a few keys, their 32-bit bucket and the
first read weight at which they move to the service. They must never
change: a kit upgrade that moved one would move real customers between the
monolith and the service mid-migration. When nginx is installed the same
keys are sent through an nginx `split_clients`, which must agree.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from router_servers import (
    EchoBackend,
    Process,
    RunningRouter,
    backends_of,
    canned_backend,
    closed_port,
    eventually,
    router_process,
)
from workspaces import unavailable

from migrate.router.buckets import bucket_of, goes_to_service
from migrate.router.errors import InvalidRule, InvalidSetting, UnknownRoute
from migrate.router.state import StateStore

StartRouter = Callable[..., RunningRouter]
INVOICE = "GET /invoices/<int:invoice_id>"

# (salt, key, bucket, first weight at which the key reads from the service)
GOLDEN = [
    ("billing", "1", 4167637332, 98),
    ("billing", "42", 3872565340, 91),
    ("billing", "10248", 2392632994, 56),
    ("billing", "ALFKI", 12186197, 1),
    ("billing", "customer-7", 3651720514, 86),
    ("billing", "Zoë", 1634437899, 39),
    ("billing", "0042", 2617950878, 61),
    ("billing", "", 1427061963, 34),
    ("billing", "VINET", 193517883, 5),
    ("billing", "550e8400-e29b-41d4-a716-446655440000", 1536723765, 36),
    ("shipping", "ALFKI", 3938086939, 92),
    ("shipping", "10248", 238219941, 6),
]


@pytest.mark.parametrize(("salt", "key", "bucket", "first"), GOLDEN)
def test_golden_buckets_never_move(
    salt: str, key: str, bucket: int, first: int
) -> None:
    assert bucket_of(salt, key) == bucket
    assert not goes_to_service(first - 1, salt, key)
    assert goes_to_service(first, salt, key)


@pytest.fixture
def nginx_sides(tmp_path: Path) -> Iterator[Callable[[str, str, int], str]]:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        unavailable("nginx is not installed")

    port = closed_port()
    weights = sorted({w for _, _, _, first in GOLDEN for w in (first - 1, first)}
                     - {0, 100})
    splits = "\n".join(
        f'split_clients "${{http_x_salt}}${{http_x_key}}" $side_{w} '
        f"{{ {w}% service; * monolith; }}"
        for w in weights
    )
    locations = "\n".join(
        f"location = /{w} {{ return 200 $side_{w}; }}" for w in weights
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log stderr; events {{}}\n"
        f"http {{ access_log off; {splits}\n"
        f"server {{ listen 127.0.0.1:{port}; {locations} }} }}\n"
    )
    process = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
         "-e", "stderr", "-g", "daemon off;"],
        stderr=subprocess.DEVNULL,
    )

    def side(salt: str, key: str, weight: int) -> str:
        if weight <= 0:
            return "monolith"
        if weight >= 100:
            return "service"
        reply = requests.get(
            f"http://127.0.0.1:{port}/{weight}", timeout=5,
            headers={"X-Salt": salt, "X-Key": key.encode().decode("latin-1")},
        )
        return reply.text

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/1", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    try:
        yield side
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize(("salt", "key", "bucket", "first"), GOLDEN)
def test_nginx_split_clients_puts_golden_keys_on_the_same_side(
    nginx_sides: Callable[[str, str, int], str],
    salt: str, key: str, bucket: int, first: int,
) -> None:
    assert nginx_sides(salt, key, first - 1) == "monolith"
    assert nginx_sides(salt, key, first) == "service"


class TestKeySources:
    def test_a_header_can_carry_the_bucket_key(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.register_routes("billing", "billing", [
            ("GET", "/invoices/<int:invoice_id>", "header:X-Customer-Id"),
        ])
        store.set_weight("billing", 1, "ops", "canary")
        router = start_router()

        moved = router.get("/invoices/5", headers={"X-Customer-Id": "ALFKI"})
        stayed = router.get("/invoices/5", headers={"X-Customer-Id": "VINET"})

        assert moved.headers["X-Migrate-Backend"] == "billing"
        assert stayed.headers["X-Migrate-Backend"] == "monolith"

    def test_a_cookie_can_carry_the_bucket_key(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.register_routes("billing", "billing", [
            ("GET", "/invoices/<int:invoice_id>", "cookie:customer"),
        ])
        store.set_weight("billing", 5, "ops", "canary")
        router = start_router()

        moved = router.get("/invoices/5", headers={"Cookie": "a=b; customer=VINET"})
        stayed = router.get("/invoices/5", headers={"Cookie": "customer=customer-7"})

        assert moved.headers["X-Migrate-Backend"] == "billing"
        assert stayed.headers["X-Migrate-Backend"] == "monolith"

    def test_a_read_without_its_key_goes_to_the_keyless_side_only(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.register_routes("billing", "billing", [
            ("GET", "/invoices/<int:invoice_id>", "header:X-Customer-Id"),
        ])
        store.set_weight("billing", 50, "ops", "half")
        router = start_router()
        before = {router.backend_of(f"/invoices/{n}") for n in range(30)}

        store.set_keyless_side("billing", "service", "ops", "new clients")
        time.sleep(0.4)
        after = {router.backend_of(f"/invoices/{n}") for n in range(30)}

        assert (before, after) == ({"monolith"}, {"billing"})

    def test_a_bad_header_name_is_refused(self, store: StateStore) -> None:
        with pytest.raises(InvalidRule, match="a header name"):
            store.register_routes("billing", "billing", [
                ("GET", "/invoices/<int:invoice_id>", "header:X Customer"),
            ])

    def test_a_keyless_side_other_than_the_two_is_refused(
        self, store: StateStore
    ) -> None:
        with pytest.raises(InvalidSetting, match="'monolith' or 'service'"):
            store.set_keyless_side("billing", "random", "ops", "typo")


class TestRouteWeights:
    def test_one_route_can_move_alone(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.set_weight("billing", 100, "ops", "invoices first", route=INVOICE)
        router = start_router()

        assert router.backend_of("/invoices/42") == "billing"
        assert router.backend_of("/customers/ALFKI/invoices") == "monolith"

    def test_moving_the_context_moves_every_route_with_it(
        self, store: StateStore, start_router: StartRouter
    ) -> None:
        store.set_weight("billing", 100, "ops", "invoices first", route=INVOICE)

        store.set_weight("billing", 0, "ops", "instant rollback")
        router = start_router()

        assert router.backend_of("/invoices/42") == "monolith"
        assert store.status()["billing"].route_weights == {}
        assert [(e.what, e.before, e.after) for e in store.history("billing")
                if e.what != "phase"][-1:] \
            == [(f"read_weight {INVOICE}", "100", "context's")]

    def test_a_route_weight_is_in_the_ledger_and_the_status(
        self, store: StateStore
    ) -> None:
        store.set_weight("billing", 25, "ana", "invoices first", route=INVOICE)

        last = [e for e in store.history("billing") if e.what != "phase"][-1]
        assert (last.actor, last.what, last.before, last.after, last.reason) == (
            "ana", f"read_weight {INVOICE}", "0", "25", "invoices first",
        )
        assert store.status()["billing"].route_weights == {INVOICE: 25}

    def test_a_route_the_context_does_not_read_is_refused(
        self, store: StateStore
    ) -> None:
        with pytest.raises(UnknownRoute, match="GET /orders"):
            store.set_weight("billing", 25, "ana", "typo", route="GET /orders")

    def test_a_weight_raise_only_moves_keys_to_the_service(
        self, store: StateStore, monolith: EchoBackend, start_router: StartRouter
    ) -> None:
        router = start_router()
        on_service: list[set[int]] = []
        for weight in (10, 30, 60):
            store.set_weight("billing", weight, "ops", "step")
            time.sleep(0.35)
            on_service.append({
                n for n in range(200)
                if router.backend_of(f"/invoices/{n}") == "billing"
            })

        assert on_service[0] < on_service[1] < on_service[2]


# The same buckets, decided by a running router over real sockets. ----------
#
# The tests above and in test_router_buckets.py ask the library; these ask
# `python -m migrate.router` itself, which hashes in its own code path.

ROUTED = [
    ("GET", "/customers/<customer_id>/invoices", "customer_id"),
    ("GET", "/invoices/<int:invoice_id>", "header:X-Customer-Id"),
]
SHIPPED = [("GET", "/customers/<customer_id>/shipments", "customer_id")]


class LiveRouter:
    """A router process in front of one canned backend, whose routing
    table the tests change through the state store."""

    def __init__(self, state: StateStore, router: Process):
        self.state = state
        self.router = router

    def weigh(self, billing: int, shipping: int | None = None) -> None:
        self.state.set_weight("billing", billing, "test", "weigh")
        if shipping is not None:
            self.state.set_weight("shipping", shipping, "test", "weigh")
        revision = self.state.revision()
        assert eventually(lambda: requests.get(
            f"{self.router.url}/_router/health", timeout=5
        ).json()["revision"] == revision), "the router never saw the change"

    def by_path(self, keys: list[str], context: str = "billing") -> list[str]:
        resource = "invoices" if context == "billing" else "shipments"
        return backends_of(self.router.port, [
            b"GET /customers/%s/%s HTTP/1.1\r\nHost: shop\r\n\r\n"
            % (urllib.parse.quote(key).encode(), resource.encode())
            for key in keys
        ])

    def by_header(self, keys: list[str]) -> list[str]:
        return backends_of(self.router.port, [
            b"GET /invoices/1 HTTP/1.1\r\nHost: shop\r\nX-Customer-Id: %s\r\n\r\n"
            % key.encode()
            for key in keys
        ])

    def on_service(self, keys: list[str], context: str = "billing") -> set[str]:
        return {key for key, side in zip(keys, self.by_path(keys, context),
                                         strict=True)
                if side == context}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRouter]:
    backend = canned_backend()
    state = StateStore(tmp_path_factory.mktemp("live") / "router.db")
    for name in ("monolith", "billing", "shipping"):
        state.set_backend(name, backend.url)
    state.register_routes("billing", "billing", ROUTED)
    state.register_routes("shipping", "shipping", SHIPPED)
    router = router_process(state)
    try:
        yield LiveRouter(state, router)
    finally:
        router.stop()
        backend.stop()


class TestThroughARunningRouter:
    def test_golden_keys_move_at_their_weight_through_the_router(
        self, live: LiveRouter
    ) -> None:
        weights = sorted({w for *_, first in GOLDEN for w in (first - 1, first)})
        wrong = []
        for weight in weights:
            live.weigh(weight, weight)
            for salt, key, _, first in GOLDEN:
                if weight not in (first - 1, first):
                    continue
                wanted = salt if weight == first else "monolith"
                if key:
                    if live.by_path([key], salt) != [wanted]:
                        wrong.append((salt, key, weight, "path"))
                if salt == "billing" and live.by_header([key]) != [wanted]:
                    wrong.append((salt, key, weight, "header"))

        assert wrong == []

    def test_raising_the_weight_only_moves_keys_to_the_service(
        self, live: LiveRouter
    ) -> None:
        keys = [f"c-{n}" for n in range(3000)]
        shares = []
        for weight in (0, 1, 5, 10, 25, 50, 75, 99, 100):
            live.weigh(weight)
            shares.append(live.on_service(keys))

        assert shares[0] == set() and shares[-1] == set(keys)
        for lower, higher in itertools.pairwise(shares):
            assert lower < higher

    def test_lowering_the_weight_only_moves_keys_back_to_the_monolith(
        self, live: LiveRouter
    ) -> None:
        keys = [f"c-{n}" for n in range(3000)]
        on_monolith = []
        for weight in (100, 60, 30, 12, 3, 0):
            live.weigh(weight)
            on_monolith.append(set(keys) - live.on_service(keys))

        assert on_monolith[0] == set() and on_monolith[-1] == set(keys)
        for before, after in itertools.pairwise(on_monolith):
            assert before < after

    def test_the_router_and_the_library_decide_every_key_alike(
        self, live: LiveRouter
    ) -> None:
        keys = [f"cust-{n}" for n in range(1500)] + ["Zoë", "ŁÓDŹ-7", "0042"]
        live.weigh(37)

        by_path = live.by_path(keys)
        by_header = live.by_header(keys)

        expected = ["billing" if goes_to_service(37, "billing", key) else "monolith"
                    for key in keys]
        assert by_path == expected
        assert by_header == expected
        assert 0.30 < expected.count("billing") / len(keys) < 0.44
