"""Fixtures for the router's tests; every server started here is stopped here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from router_servers import BILLING_ROUTES, EchoBackend, RunningRouter

from migrate.router.proxy import Settings
from migrate.router.state import StateStore


@pytest.fixture
def monolith() -> Iterator[EchoBackend]:
    backend = EchoBackend("monolith")
    backend.server.start()
    yield backend
    backend.server.stop()


@pytest.fixture
def billing() -> Iterator[EchoBackend]:
    backend = EchoBackend("billing")
    backend.server.start()
    yield backend
    backend.server.stop()


@pytest.fixture
def store(tmp_path: Any, monolith: EchoBackend, billing: EchoBackend) -> StateStore:
    state = StateStore(tmp_path / "router.db")
    state.set_backend("monolith", monolith.url)
    state.set_backend("billing", billing.url)
    state.register_routes("billing", "billing", BILLING_ROUTES)
    return state


@pytest.fixture
def start_router(store: StateStore) -> Iterator[Callable[..., RunningRouter]]:
    started: list[RunningRouter] = []

    def start(**settings: Any) -> RunningRouter:
        router = RunningRouter(store, Settings(**settings))
        started.append(router)
        return router

    yield start
    for router in started:
        router.stop()


@pytest.fixture
def router(start_router: Callable[..., RunningRouter]) -> RunningRouter:
    return start_router()
