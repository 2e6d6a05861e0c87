"""The SQL guard: each statement a process runs, held to the contexts' tables.

The static check reads imports and metadata; raw SQL and queries built at
run time slip past both. The guard sees what actually runs. It is opt-in:

- for the monolith, the environment: `MIGRATE_SQL_GUARD=warn` logs each
  offending statement once (and appends it as a JSON line to the file named
  by `MIGRATE_SQL_GUARD_REPORT`, when set); `MIGRATE_SQL_GUARD=raise`
  refuses to run it (`CrossContextStatement`). Off by default.
- for tests, the pytest plugin `migrate.check.pytest_plugin` (`--sql-guard`):
  a test whose code ran an offending statement fails, naming it.

Each distinct statement is parsed once with sqlglot, in the engine's
dialect, and its tables are looked up in the manifest. It is reported when
its tables belong to two contexts (`sql-cross-context`: a join, a subquery,
an INSERT ... SELECT), or when a context's code runs it on another
context's table (`sql-foreign-table`). The code that runs it is the nearest
frame on the stack inside a context's package, so a shared kernel's unit of
work acting for billing counts as billing. A statement the parser cannot
read is reported too (`sql-unreadable`): fail closed. Tables no context
claims (the kit's, the database's catalog) are not judged here; the static
check reports unclaimed tables of the metadata.

It costs a parse per distinct statement and a stack walk per execution.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa

from migrate.check.errors import CheckError, CrossContextStatement
from migrate.check.report import NO_CONTEXT, Violation
from migrate.manifest import Manifest

log = logging.getLogger(__name__)

ENVIRONMENT = "MIGRATE_SQL_GUARD"
REPORT_FILE = "MIGRATE_SQL_GUARD_REPORT"
MODES = ("off", "warn", "raise", "record")

_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql",
             "mssql": "tsql", "oracle": "oracle"}
# Statements sqlglot keeps as an opaque command that touch no table.
_TABLELESS = ("SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "BEGIN", "SHOW", "SET",
              "PRAGMA", "ANALYZE", "VACUUM", "RESET", "DISCARD")
_CACHE_SIZE = 4096
_UNREADABLE = None


class SqlGuard:
    """Judges statements against a manifest; watches engines when asked."""

    def __init__(self, manifest: Manifest, mode: str = "record",
                 report_file: Path | None = None):
        if mode not in MODES:
            raise CheckError(
                f"SQL guard mode {mode!r}: the modes are {', '.join(MODES)}"
            )

        self.mode = mode
        self.report_file = report_file
        self._owners = {
            table.lower(): context.name
            for context in manifest.contexts.values() for table in context.tables
        }
        self._packages = sorted(
            ((c.package, c.name) for c in manifest.contexts.values()),
            key=lambda pc: -len(pc[0]),
        )
        self._module_context: dict[str, str | None] = {}
        self._tables: dict[tuple[str, str], frozenset[str] | None] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self._watched: list[Any] = []
        self.found: list[Violation] = []

    # -- judging ---------------------------------------------------------

    def judge(self, statement: str, dialect: str = "sqlite",
              frame: FrameType | None = None) -> list[Violation]:
        """What is wrong with running `statement` from `frame`'s code."""
        tables = self._tables_of(statement, dialect)
        if tables is _UNREADABLE:
            context, location = self._caller(frame)
            return [self._violation("sql-unreadable", context, location, statement,
                                    "the statement does not parse, so its tables "
                                    "are unknown")]

        owners = {t: self._owners[t] for t in tables if t in self._owners}
        if not owners:
            return []

        contexts = sorted(set(owners.values()))
        context, location = self._caller(frame)
        if len(contexts) > 1:
            spans = ", ".join(f"{t} ({c})" for t, c in sorted(owners.items()))
            return [self._violation("sql-cross-context", context, location, statement,
                                    f"one statement spans {spans}")]

        if context is not None and contexts[0] != context:
            theirs = ", ".join(sorted(owners))
            return [self._violation("sql-foreign-table", context, location, statement,
                                    f"{context}'s code touches {theirs}, owned by "
                                    f"{contexts[0]}", other=contexts[0])]
        return []

    def _tables_of(self, statement: str, dialect: str) -> frozenset[str] | None:
        key = (dialect, statement)
        if key in self._tables:
            return self._tables[key]

        tables = _parse_tables(statement, dialect)
        with self._lock:
            if len(self._tables) >= _CACHE_SIZE:
                self._tables.clear()
            self._tables[key] = tables
        return tables

    def _caller(self, frame: FrameType | None) -> tuple[str | None, str]:
        """The context whose code runs the statement, and where it does."""
        location = None
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            here = f"{frame.f_code.co_filename}:{frame.f_lineno}"
            if location is None and not _is_machinery(module):
                location = here
            context = self._context_of(module)
            if context is not None:
                return context, here
            frame = frame.f_back
        return None, location or "unknown"

    def _context_of(self, module: str) -> str | None:
        if module not in self._module_context:
            self._module_context[module] = next(
                (name for package, name in self._packages
                 if module == package or module.startswith(package + ".")),
                None,
            )
        return self._module_context[module]

    def _violation(self, rule: str, context: str | None, location: str,
                   statement: str, message: str, other: str | None = None) -> Violation:
        text = " ".join(statement.split())
        return Violation(rule, context or NO_CONTEXT, location, f"{message}: {text}",
                         f"{rule}: {text}", other)

    # -- watching --------------------------------------------------------

    def watch(self, target: Any = sa.engine.Engine) -> None:
        """Judge every statement `target` runs (an engine, or every engine)."""
        sa.event.listen(target, "before_cursor_execute", self._before)
        self._watched.append(target)

    def unwatch(self) -> None:
        for target in self._watched:
            sa.event.remove(target, "before_cursor_execute", self._before)
        self._watched.clear()

    def take(self) -> list[Violation]:
        """The violations recorded since the last call."""
        with self._lock:
            found, self.found = self.found, []
        return found

    def _before(self, connection: Any, cursor: Any, statement: str, parameters: Any,
                context: Any, executemany: bool) -> None:
        dialect = _DIALECTS.get(connection.dialect.name, connection.dialect.name)
        found = self.judge(statement, dialect, sys._getframe(1))
        if not found:
            return

        with self._lock:
            self.found.extend(found)
        for violation in found:
            self._tell(violation)
        if self.mode == "raise":
            first = found[0]
            raise CrossContextStatement(first.rule, first.message, first.location)

    def _tell(self, violation: Violation) -> None:
        key = (violation.rule, violation.location, violation.subject)
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)

        if self.mode in ("warn", "raise"):
            log.warning("%s at %s: %s", violation.rule, violation.location,
                        violation.message)
        if self.report_file is not None:
            with self._lock, self.report_file.open("a", encoding="utf-8") as out:
                out.write(json.dumps(violation.to_dict()) + "\n")


def _parse_tables(statement: str, dialect: str) -> frozenset[str] | None:
    # Imported here: the monolith's host imports this module on every start.
    import sqlglot
    from sqlglot import exp

    try:
        trees = sqlglot.parse(statement, read=dialect)
    except sqlglot.errors.SqlglotError:
        return _UNREADABLE

    tables: set[str] = set()
    for tree in trees:
        if tree is None:
            continue
        if isinstance(tree, exp.Command):
            if str(tree.this).upper() in _TABLELESS:
                continue
            return _UNREADABLE

        named = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        tables.update(
            t.name.lower() for t in tree.find_all(exp.Table)
            if t.name and t.name.lower() not in named
        )
    return frozenset(tables)


def _is_machinery(module: str) -> bool:
    return module.startswith(("sqlalchemy.", "migrate.check.sqlguard"))


def mode_from_environment() -> str:
    value = os.environ.get(ENVIRONMENT, "").strip().lower()
    if value in ("", "0", "off", "no", "false"):
        return "off"
    if value in ("1", "on", "yes", "true"):
        return "warn"
    if value not in ("warn", "raise"):
        raise CheckError(f"{ENVIRONMENT}={value!r}: the values are off, warn, raise")
    return value


def watch_from_environment(engine: Any, manifest: Manifest) -> SqlGuard | None:
    """Guard `engine` when `MIGRATE_SQL_GUARD` asks for it; None when off."""
    mode = mode_from_environment()
    if mode == "off":
        return None

    report = os.environ.get(REPORT_FILE)
    guard = SqlGuard(manifest, mode, Path(report) if report else None)
    guard.watch(engine)
    log.info("SQL guard on (%s) for %s", mode, engine.url)
    return guard
