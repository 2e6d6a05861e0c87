"""Testers force a side only with the operator's secret; otherwise ignored."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from router_servers import EchoBackend, RunningRouter

from migrate.router.errors import InvalidSetting
from migrate.router.state import StateStore

SECRET = "correct-horse-battery-staple"


def test_an_override_with_the_secret_forces_the_service(
    store: StateStore, start_router: object
) -> None:
    store.set_override_secret(SECRET, "ops", "testers need the service")
    router = start_router()  # type: ignore[operator]

    forced = router.get("/invoices/42", headers={"X-Migrate-Side": f"service:{SECRET}"})

    assert forced.headers["X-Migrate-Backend"] == "billing"
    assert router.backend_of("/invoices/42") == "monolith"


def test_an_override_cookie_with_the_secret_forces_the_service(
    store: StateStore, start_router: object
) -> None:
    store.set_override_secret(SECRET, "ops", "testers need the service")
    router = start_router()  # type: ignore[operator]

    forced = router.get(
        "/invoices/42", headers={"Cookie": f"theme=dark; migrate_side=service:{SECRET}"}
    )

    assert forced.headers["X-Migrate-Backend"] == "billing"


def test_an_override_can_force_the_monolith_at_full_weight(
    store: StateStore, start_router: object
) -> None:
    store.set_override_secret(SECRET, "ops", "compare")
    store.set_weight("billing", 100, "ops", "all reads")
    router = start_router()  # type: ignore[operator]

    forced = router.get(
        "/invoices/42", headers={"X-Migrate-Side": f"monolith:{SECRET}"}
    )

    assert forced.headers["X-Migrate-Backend"] == "monolith"


def test_an_override_with_a_wrong_secret_is_ignored_and_logged(
    store: StateStore,
    start_router: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="migrate.router.proxy")
    store.set_override_secret(SECRET, "ops", "testers need the service")
    router = start_router()  # type: ignore[operator]

    answer = router.get(
        "/invoices/42", headers={"X-Migrate-Side": "service:guessed-wrongly-1234"}
    )

    assert answer.headers["X-Migrate-Backend"] == "monolith"
    assert router.get("/_router/stats").json()["overrides_ignored"] == 1
    lines = [r.getMessage() for r in caplog.records]
    assert any("ignored: the secret does not match" in line for line in lines)
    assert not any("guessed-wrongly" in line for line in lines)


def test_an_override_without_any_secret_configured_is_ignored(
    router: RunningRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="migrate.router.proxy")

    answer = router.get("/invoices/42", headers={"X-Migrate-Side": "service:"})

    assert answer.headers["X-Migrate-Backend"] == "monolith"
    assert any("no override secret is set" in r.getMessage() for r in caplog.records)


def test_an_override_never_moves_a_write(
    store: StateStore, monolith: EchoBackend, start_router: object
) -> None:
    store.set_override_secret(SECRET, "ops", "testers need the service")
    router = start_router()  # type: ignore[operator]

    answer = router.post(
        "/invoices/42/payments", headers={"X-Migrate-Side": f"service:{SECRET}"}
    )

    assert answer.headers["X-Migrate-Backend"] == "monolith"


def test_the_store_keeps_only_a_hash_of_the_secret(store: StateStore) -> None:
    store.set_override_secret(SECRET, "ops", "testers")

    files = [Path(store.path), Path(store.path + "-wal")]
    raw = b"".join(f.read_bytes() for f in files if f.exists())

    assert hashlib.sha256(SECRET.encode()).hexdigest().encode() in raw
    assert SECRET.encode() not in raw
    assert store.history()[-1].after == "set"


def test_a_short_secret_is_refused(store: StateStore) -> None:
    with pytest.raises(InvalidSetting, match="at least 16 characters"):
        store.set_override_secret("short", "ops", "typo")
