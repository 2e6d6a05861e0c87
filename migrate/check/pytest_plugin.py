"""A pytest plugin that fails a test whose code ran SQL across contexts.

Opt in per run: `pytest -p migrate.check.pytest_plugin --sql-guard`
(`--sql-guard-manifest PATH` for a manifest other than the monolith's).
Every engine in the test process is watched; statements run while a test's
body runs are judged by `migrate.check.sqlguard`, and a test that ran an
offending one fails with the statement and the code location. Statements of
fixtures' set-up and tear-down are not judged, and neither are processes the
test starts (give those `MIGRATE_SQL_GUARD` in their environment).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from migrate.check.report import Violation
from migrate.check.sqlguard import SqlGuard
from migrate.manifest import load

_GUARD = pytest.StashKey[SqlGuard]()


class CrossContextSql(AssertionError):
    def __init__(self, found: list[Violation]):
        lines = "\n".join(f"  {v.rule} at {v.location}: {v.message}" for v in found)
        super().__init__(f"the test ran SQL across contexts:\n{lines}")
        self.found = found


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sql-guard", "SQL across bounded contexts")
    group.addoption("--sql-guard", action="store_true",
                    help="fail tests whose code runs SQL across contexts")
    group.addoption("--sql-guard-manifest", type=Path, default=None,
                    help="the context manifest (default: the monolith's)")


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--sql-guard"):
        return

    guard = SqlGuard(load(config.getoption("--sql-guard-manifest")))
    guard.watch()
    config.stash[_GUARD] = guard


def pytest_unconfigure(config: pytest.Config) -> None:
    guard = config.stash.get(_GUARD, None)
    if guard is not None:
        guard.unwatch()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    guard = item.config.stash.get(_GUARD, None)
    if guard is None:
        return (yield)

    guard.take()
    result = yield
    found = guard.take()
    if found:
        raise CrossContextSql(found)
    return result
