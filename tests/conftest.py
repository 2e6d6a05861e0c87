"""Fixtures shared by every test: databases, the Northwind dump, a whole system.

PostgreSQL tests run against the server on 127.0.0.1:5432 (a fresh database
each). Without one they skip and say why, except under CI (CI=true), where
a missing database is a failure.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.settings import PROJECT_ROOT, Settings

POSTGRES = os.environ.get("MIGRATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
NORTHWIND = PROJECT_ROOT.parent / "shared" / "data" / "northwind" / "northwind.sql"
IN_CI = os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'monolith.db'}"


@contextlib.contextmanager
def postgres_databases(count: int) -> Iterator[list[str]]:
    """`count` fresh PostgreSQL databases, dropped afterwards."""
    import sqlalchemy as sa

    if count == 0:
        yield []
        return

    admin = sa.create_engine(f"{POSTGRES}/test", isolation_level="AUTOCOMMIT")
    names = [f"migrate_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    try:
        with admin.connect() as db:
            for name in names:
                db.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as error:
        unavailable(f"no PostgreSQL at {POSTGRES}: {error.orig}")
    try:
        yield [f"{POSTGRES}/{name}" for name in names]
    finally:
        with admin.connect() as db:
            for name in names:
                db.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


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


def free_port_base(span: int = 20) -> int:
    """The first of `span` consecutive ports that nothing listens on."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - span)
        if all(_free(port) for port in range(base, base + span)):
            return base
    raise RuntimeError("no run of free ports found")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def workspace(tmp_path: Path) -> dict[str, str]:
    """Environment for a whole system of its own: folder, ports, extractions."""
    return {
        **os.environ,
        "MIGRATE_HOME": str(tmp_path / "var"),
        "MIGRATE_EXTRACTED": str(tmp_path / "extracted"),
        "MIGRATE_PORT_BASE": str(free_port_base()),
    }


@pytest.fixture
def system(workspace: dict[str, str]) -> Iterator[object]:
    from migrate.system import System

    running = System(Settings.from_env(workspace))
    try:
        yield running
    finally:
        running.down()
