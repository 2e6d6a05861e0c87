"""nginx on the generated configuration routes as the kit's router does.

Needs nginx (Debian's `nginx` package): without it these tests skip and say
so, except under CI (CI=true), where a missing nginx is a failure.

The golden vectors: 200 invoice ids and 40 customer ids (ASCII and not, of
every length modulo 4, so every tail of MurmurHash2 is hashed), at weights
1, 25, 50 and 99. Each request goes through nginx and through the router;
both must land on the same backend, and that backend must be the side
`goes_to_service` gives.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from workspaces import unavailable

from migrate.deploy.errors import RoutingInvalid
from migrate.deploy.routes import Plan, nginx, plan_of
from migrate.router.buckets import goes_to_service
from migrate.router.state import StateStore

from .servers import Backend, Nginx, Router, free_port, nginx_binary

ROUTES = [
    ("GET", "/invoices/<int:invoice_id>", "invoice_id"),
    ("GET", "/customers/<customer_id>/invoices", "customer_id"),
    ("POST", "/invoices/<int:invoice_id>/payments", "invoice_id"),
    ("GET", "/invoices", None),
]
INVOICES = [str(n) for n in range(10248, 10448)]
CUSTOMERS = [
    "ALFKI", "ANATR", "ANTON", "AROUT", "BERGS", "BLAUS", "BLONP", "BOLID",
    "BONAP", "BOTTM", "BSBEV", "CACTU", "CENTC", "CHOPS", "COMMI", "CONSH",
    "DRACD", "DUMON", "EASTC", "ERNSH", "A", "AB", "ABC", "ABCD", "ABCDEFG",
    "Zoë", "Łódź", "東京", "x-1", "customer_2049", "FAMIA", "FISSA", "FOLIG",
    "FOLKO", "FRANK", "FRANR", "FRANS", "FURIB", "GALED", "GODOS",
]  # fmt: skip


@pytest.fixture(scope="module")
def binary() -> str:
    found = nginx_binary()
    if found is None:
        unavailable("nginx is not installed (apt-get install nginx)")
    assert found is not None
    return found


@pytest.fixture
def backends() -> Iterator[dict[str, Backend]]:
    running = {name: Backend(name) for name in ("monolith", "billing")}
    yield running
    for backend in running.values():
        backend.stop()


@pytest.fixture
def store(tmp_path: Path, backends: dict[str, Backend]) -> StateStore:
    state = StateStore(tmp_path / "router.db")
    for name, backend in backends.items():
        state.set_backend(name, backend.url)
    state.register_routes("billing", "billing", ROUTES)
    return state


@pytest.fixture
def start_nginx(binary: str, tmp_path: Path) -> Iterator[Callable[..., Nginx]]:
    started: list[Nginx] = []

    def start(plan: Plan, secret: str | None = None) -> Nginx:
        port = free_port()
        prefix = tmp_path / f"nginx-{len(started)}"
        configuration = nginx(plan, f"127.0.0.1:{port}", secret)
        server = Nginx(binary, prefix, configuration, port)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def router(store: StateStore) -> Iterator[Callable[[], Router]]:
    started: list[Router] = []

    def start() -> Router:
        started.append(Router(store))
        return started[-1]

    yield start
    for running in started:
        running.stop()


_SESSION = requests.Session()


def _side(base: str, path: str, method: str = "GET",
          headers: dict[str, str] | None = None) -> str:
    answer = _SESSION.request(method, base + path, headers=headers, timeout=10)
    backend: str = answer.json()["backend"]
    return backend


@pytest.mark.parametrize("weight", [0, 50, 100])
def test_nginx_accepts_the_generated_configuration(
    binary: str, store: StateStore, tmp_path: Path, weight: int
) -> None:
    store.set_weight("billing", weight, "test", "nginx -t")
    server = Nginx(binary, tmp_path / "t", nginx(plan_of(store)), free_port())

    tested = server.test()

    assert tested.returncode == 0, tested.stderr
    assert "test is successful" in tested.stderr


@pytest.mark.parametrize("weight", [1, 25, 50, 99])
def test_requests_land_on_the_same_side_as_through_the_router(
    store: StateStore,
    start_nginx: Callable[[Plan], Nginx],
    router: Callable[[], Router],
    weight: int,
) -> None:
    store.set_weight("billing", weight, "test", "golden vectors")
    through_nginx = start_nginx(plan_of(store))
    through_router = router()
    paths = [f"/invoices/{key}" for key in INVOICES]
    paths += [f"/customers/{key}/invoices" for key in CUSTOMERS]

    by_nginx = {path: _side(through_nginx.url, path) for path in paths}
    by_router = {path: _side(through_router.url, path) for path in paths}

    expected = {
        path: "billing"
        if goes_to_service(weight, "billing", path.split("/")[2])
        else "monolith"
        for path in paths
    }
    assert by_nginx == by_router
    assert by_router == expected
    assert 0 < list(by_nginx.values()).count("billing") < len(paths)


def test_unkeyed_and_unmatched_reads_stay_on_the_monolith(
    store: StateStore, start_nginx: Callable[[Plan], Nginx]
) -> None:
    store.set_weight("billing", 50, "test", "half")
    server = start_nginx(plan_of(store))

    assert _side(server.url, "/invoices") == "monolith"
    assert _side(server.url, "/orders/10248") == "monolith"
    assert _side(server.url, "/invoices/not-a-number") == "monolith"


def test_a_read_the_service_fails_is_answered_by_the_monolith(
    store: StateStore,
    start_nginx: Callable[[Plan], Nginx],
    backends: dict[str, Backend],
) -> None:
    store.set_weight("billing", 100, "test", "all reads")
    backends["billing"].status = 503
    server = start_nginx(plan_of(store))

    answer = requests.get(f"{server.url}/invoices/10248", timeout=10)

    assert answer.status_code == 200
    assert answer.json() == {"backend": "monolith"}
    assert backends["billing"].seen == [("GET", "/invoices/10248")]


def test_writes_go_to_the_writer_whatever_the_weight(
    store: StateStore, start_nginx: Callable[[Plan], Nginx]
) -> None:
    store.set_weight("billing", 100, "test", "all reads")
    before = start_nginx(plan_of(store))
    store.set_writer("billing", "billing", "test", "flip")
    after = start_nginx(plan_of(store))

    assert _side(before.url, "/invoices/10248/payments", "POST") == "monolith"
    assert _side(after.url, "/invoices/10248/payments", "POST") == "billing"


def test_held_writes_are_refused_at_once_with_writes_held(
    store: StateStore, start_nginx: Callable[[Plan], Nginx]
) -> None:
    store.hold_writes("billing", True, "test", "flip in progress")
    server = start_nginx(plan_of(store))

    answer = requests.post(f"{server.url}/invoices/10248/payments", timeout=10)

    assert answer.status_code == 503
    assert answer.json()["error"] == "writes_held"
    assert _side(server.url, "/invoices/10248") == "monolith"


def _shadowed(plan: Plan, percent: int) -> Plan:
    contexts = tuple(
        dataclasses.replace(c, shadow_percent=percent) for c in plan.contexts
    )
    return dataclasses.replace(plan, contexts=contexts)


def test_shadow_mirrors_monolith_reads_to_the_service(
    store: StateStore,
    start_nginx: Callable[[Plan], Nginx],
    backends: dict[str, Backend],
) -> None:
    server = start_nginx(_shadowed(plan_of(store), 100))

    answer = requests.get(f"{server.url}/invoices/10250?expand=lines", timeout=10)

    assert answer.json() == {"backend": "monolith"}
    assert answer.headers["X-Migrate-Backend"] == "monolith"
    _wait_for(lambda: backends["billing"].seen)
    assert backends["billing"].seen == [("GET", "/invoices/10250?expand=lines")]


def test_shadow_of_a_service_read_mirrors_it_to_the_monolith(
    store: StateStore,
    start_nginx: Callable[[Plan], Nginx],
    backends: dict[str, Backend],
) -> None:
    store.set_weight("billing", 100, "test", "all reads")
    server = start_nginx(_shadowed(plan_of(store), 100))

    answer = requests.get(f"{server.url}/customers/ALFKI/invoices", timeout=10)

    assert answer.json() == {"backend": "billing"}
    _wait_for(lambda: backends["monolith"].seen)
    assert backends["monolith"].seen == [("GET", "/customers/ALFKI/invoices")]


def test_shadow_copies_its_share_of_reads(
    store: StateStore,
    start_nginx: Callable[[Plan], Nginx],
    backends: dict[str, Backend],
) -> None:
    server = start_nginx(_shadowed(plan_of(store), 30))

    for key in INVOICES:
        _side(server.url, f"/invoices/{key}")
    _wait_for(lambda: len(backends["monolith"].seen) == len(INVOICES))
    time.sleep(0.5)

    assert 20 <= len(backends["billing"].seen) <= 100


def test_a_route_weight_of_its_own_overrides_the_contexts(
    store: StateStore, start_nginx: Callable[[Plan], Nginx]
) -> None:
    plan = plan_of(store)
    (context,) = plan.contexts
    own = dataclasses.replace(
        context, read_weight=0, route_weights={"GET /invoices/<int:invoice_id>": 100}
    )
    server = start_nginx(dataclasses.replace(plan, contexts=(own,)))

    assert _side(server.url, "/invoices/10248") == "billing"
    assert _side(server.url, "/customers/ALFKI/invoices") == "monolith"


def test_reads_without_a_key_go_where_keyless_reads_go(
    store: StateStore, start_nginx: Callable[[Plan], Nginx]
) -> None:
    plan = plan_of(store)
    (context,) = plan.contexts
    keyless = dataclasses.replace(context, read_weight=50, keyless_side="service")
    server = start_nginx(dataclasses.replace(plan, contexts=(keyless,)))

    assert _side(server.url, "/invoices") == "billing"


def test_a_header_bucket_key_splits_by_the_same_buckets(
    tmp_path: Path,
    backends: dict[str, Backend],
    start_nginx: Callable[[Plan], Nginx],
) -> None:
    state = StateStore(tmp_path / "headers.db")
    for name, backend in backends.items():
        state.set_backend(name, backend.url)
    state.register_routes(
        "billing", "billing", [("GET", "/me/invoices", "header:X-Customer-Id")]
    )
    state.set_weight("billing", 50, "test", "half")
    server = start_nginx(plan_of(state))

    keys = [key for key in CUSTOMERS if key.isascii()]
    sides = {
        key: _SESSION.get(
            f"{server.url}/me/invoices", headers={"X-Customer-Id": key}, timeout=10
        ).json()["backend"]
        for key in keys
    }
    without = _side(server.url, "/me/invoices")

    assert sides == {
        key: "billing" if goes_to_service(50, "billing", key) else "monolith"
        for key in keys
    }
    assert without == "monolith"


def _wait_for(probe: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe() and time.monotonic() < deadline:
        time.sleep(0.05)


SECRET = "s3cret-override_0123456789"
WRONG = "not-the-secret-0123456789"


def _override_cases() -> dict[str, dict[str, str]]:
    """Ways a tester's request asks for a side, and ways that do not count."""
    return {
        "none": {},
        "header service": {"X-Migrate-Side": f"service:{SECRET}"},
        "header monolith": {"X-Migrate-Side": f"monolith:{SECRET}"},
        "cookie service": {"Cookie": f"migrate_side=service:{SECRET}"},
        "cookie monolith": {"Cookie": f"theme=dark; migrate_side=monolith:{SECRET}"},
        "wrong secret": {"X-Migrate-Side": f"service:{WRONG}"},
        "unknown side": {"X-Migrate-Side": f"elsewhere:{SECRET}"},
        "wrong header, right cookie": {
            "X-Migrate-Side": f"service:{WRONG}",
            "Cookie": f"migrate_side=service:{SECRET}",
        },
    }


@pytest.mark.parametrize("weight", [0, 50, 100])
def test_overrides_land_on_the_same_side_as_through_the_router(
    store: StateStore,
    start_nginx: Callable[..., Nginx],
    router: Callable[[], Router],
    weight: int,
) -> None:
    store.set_override_secret(SECRET, "test", "testers")
    store.set_weight("billing", weight, "test", "overrides")
    through_nginx = start_nginx(plan_of(store), SECRET)
    through_router = router()
    paths = [f"/invoices/{key}" for key in INVOICES[:20]] + ["/invoices"]
    cases = _override_cases()

    by_nginx = {(case, path): _side(through_nginx.url, path, headers=headers)
                for case, headers in cases.items() for path in paths}
    by_router = {(case, path): _side(through_router.url, path, headers=headers)
                 for case, headers in cases.items() for path in paths}

    assert by_nginx == by_router
    forced = {case: {by_router[(case, path)] for path in paths} for case in cases}
    assert forced["header service"] == forced["cookie service"] == {"billing"}
    assert forced["header monolith"] == forced["cookie monolith"] == {"monolith"}
    assert forced["wrong secret"] == forced["unknown side"] == forced["none"]
    assert forced["wrong header, right cookie"] == forced["none"]


def test_an_override_never_moves_a_write(
    store: StateStore, start_nginx: Callable[..., Nginx]
) -> None:
    store.set_override_secret(SECRET, "test", "testers")
    server = start_nginx(plan_of(store), SECRET)

    side = _side(server.url, "/invoices/10248/payments", "POST",
                 headers={"X-Migrate-Side": f"service:{SECRET}"})

    assert side == "monolith"


def test_a_read_overridden_to_a_failing_service_is_answered_by_the_monolith(
    store: StateStore,
    start_nginx: Callable[..., Nginx],
    backends: dict[str, Backend],
) -> None:
    store.set_override_secret(SECRET, "test", "testers")
    backends["billing"].status = 503
    server = start_nginx(plan_of(store), SECRET)

    side = _side(server.url, "/invoices/10248",
                 headers={"X-Migrate-Side": f"service:{SECRET}"})

    assert side == "monolith"
    assert backends["billing"].seen == [("GET", "/invoices/10248")]


def test_without_the_secret_nginx_ignores_overrides(
    store: StateStore, start_nginx: Callable[..., Nginx]
) -> None:
    store.set_override_secret(SECRET, "test", "testers")
    server = start_nginx(plan_of(store))

    side = _side(server.url, "/invoices/10248",
                 headers={"X-Migrate-Side": f"service:{SECRET}"})

    assert side == "monolith"
    assert SECRET not in nginx(plan_of(store))


@pytest.mark.parametrize("secret, reason", [
    (WRONG, "not the one the routing state keeps"),
    (None, "the routing state has none"),
])
def test_a_secret_the_state_does_not_hold_is_refused_without_showing_it(
    store: StateStore, secret: str | None, reason: str
) -> None:
    if secret is not None:
        store.set_override_secret(SECRET, "test", "testers")

    with pytest.raises(RoutingInvalid, match=reason) as refused:
        nginx(plan_of(store), secret=secret or SECRET)

    assert SECRET not in str(refused.value) and WRONG not in str(refused.value)


@pytest.mark.parametrize("weight", [1, 25, 50, 99])
def test_shadow_mirrors_a_keyed_read_to_the_side_its_bucket_did_not_pick(
    store: StateStore,
    start_nginx: Callable[..., Nginx],
    backends: dict[str, Backend],
    weight: int,
) -> None:
    store.set_weight("billing", weight, "test", "shadowed split")
    server = start_nginx(_shadowed(plan_of(store), 100))
    keys = INVOICES[:60]

    answered = {key: _side(server.url, f"/invoices/{key}") for key in keys}
    _wait_for(lambda: sum(len(b.seen) for b in backends.values()) == 2 * len(keys))

    expected = {key: "billing" if goes_to_service(weight, "billing", key)
                else "monolith" for key in keys}
    assert answered == expected
    for name, backend in backends.items():
        reached = sorted(path for _, path in backend.seen)
        assert reached == sorted(f"/invoices/{key}" for key in keys), name


def test_shadow_mirrors_an_overridden_read_to_the_other_side(
    store: StateStore,
    start_nginx: Callable[..., Nginx],
    backends: dict[str, Backend],
) -> None:
    store.set_override_secret(SECRET, "test", "testers")
    store.set_weight("billing", 50, "test", "shadowed split")
    server = start_nginx(_shadowed(plan_of(store), 100), SECRET)

    side = _side(server.url, "/invoices/10248",
                 headers={"X-Migrate-Side": f"service:{SECRET}"})
    _wait_for(lambda: backends["monolith"].seen)

    assert side == "billing"
    assert backends["monolith"].seen == [("GET", "/invoices/10248")]
