"""Helpers for tests that need databases or a whole system of their own."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES = os.environ.get(
    "MIGRATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432"
)
IN_CI = os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


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


def system_environment(folder: Path) -> dict[str, str]:
    """Environment for a whole system of its own under `folder`: its files,
    its ports, and its own trace collector."""
    base = free_port_base()
    return {
        **os.environ,
        "MIGRATE_HOME": str(folder / "var"),
        "MIGRATE_EXTRACTED": str(folder / "extracted"),
        "MIGRATE_PORT_BASE": str(base),
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{base + 4}",
    }


def free_port_base(span: int = 20) -> int:
    """The first of `span` consecutive ports that nothing listens on."""
    for _ in range(200):
        # Below Linux's ephemeral range (32768 and up), where a client
        # connection could take one of our ports before we bind it.
        base = random.randrange(20000, 32768 - span)
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
