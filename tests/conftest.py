"""Fixtures shared by every test: databases, the Northwind dump, a whole system.

PostgreSQL tests run against the server on 127.0.0.1:5432 (a fresh database
each). Without one they skip and say why, except under CI (CI=true), where
a missing database is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from workspaces import postgres_databases, system_environment, unavailable

from migrate.settings import PROJECT_ROOT, Settings

# The dump lives beside the checkout; MIGRATE_NORTHWIND points elsewhere.
NORTHWIND = Path(
    os.environ.get(
        "MIGRATE_NORTHWIND",
        PROJECT_ROOT.parent / "shared" / "data" / "northwind" / "northwind.sql",
    )
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'monolith.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_databases(1) as (url,):
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on a SQLite file and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(scope="session")
def northwind_dump() -> Path:
    if not NORTHWIND.exists():
        unavailable(f"the Northwind dump is not at {NORTHWIND}")
    return NORTHWIND


@pytest.fixture
def workspace(tmp_path: Path) -> dict[str, str]:
    """Environment for a whole system of its own: folder, ports, extractions."""
    return system_environment(tmp_path)


@pytest.fixture
def system(workspace: dict[str, str]) -> Iterator[object]:
    from migrate.system import System

    running = System(Settings.from_env(workspace))
    try:
        yield running
    finally:
        running.down()
