"""The router's state: backends, routes, weights, writers, and their history.

One SQLite file holds everything a router needs to route, so the command
line can change it while a router process reads it. The file is in WAL mode:
readers never wait for a writer, and writers queue one at a time (each change
is one `BEGIN IMMEDIATE` transaction, with a 30 s busy timeout).

Every change, in the same transaction, bumps a revision counter and writes a
ledger row (when, who, which context, what, from, to, why), so a router
notices a change by reading one integer and an operator can always answer
"who moved billing to 25 %, and why?". A call that changes nothing writes
nothing and leaves the revision alone.

A new context starts with its reads on the monolith (weight 0) and the
monolith as its writer; registering its routes again keeps both. The salt of
a context's sticky buckets defaults to the context's name; changing it
reshuffles every key, so it changes only when asked.

What the store does not do: it does not check that a backend's URL answers,
nor that a writer really is ready to write; fencing and sync lag are the
business of whoever flips the writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from migrate.router.errors import (
    InvalidBackendUrl,
    InvalidRule,
    InvalidService,
    InvalidWeight,
    InvalidWriter,
    RouteTaken,
    ServiceStillWrites,
    UnknownBackend,
    UnknownContext,
)
from migrate.router.table import Matcher, Route, check_route

MONOLITH = "monolith"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS backends (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS contexts (
    context TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    read_weight INTEGER NOT NULL CHECK (read_weight BETWEEN 0 AND 100),
    writer TEXT NOT NULL,
    writes_held INTEGER NOT NULL DEFAULT 0 CHECK (writes_held IN (0, 1)),
    salt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS routes (
    method TEXT NOT NULL,
    rule TEXT NOT NULL,
    context TEXT NOT NULL REFERENCES contexts (context),
    bucket_key TEXT,
    PRIMARY KEY (method, rule)
);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    context TEXT,
    what TEXT NOT NULL,
    from_value TEXT,
    to_value TEXT,
    reason TEXT NOT NULL,
    revision INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_by_context ON ledger (context, id);
CREATE TABLE IF NOT EXISTS revision (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO revision (only, value) VALUES (1, 0);
"""


@dataclasses.dataclass(frozen=True)
class ContextState:
    """How one context is routed right now."""

    name: str
    service: str
    read_weight: int
    writer: str
    writes_held: bool
    salt: str


@dataclasses.dataclass(frozen=True)
class ContextStatus:
    """A context's routing and its routes, as an operator reads them."""

    name: str
    service: str
    read_weight: int
    writer: str
    writes_held: bool
    salt: str
    routes: tuple[Route, ...]


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    """One change: who changed what of which context, from what to what."""

    id: int
    at: str
    actor: str
    context: str | None
    what: str
    before: str | None
    after: str | None
    reason: str
    revision: int


@dataclasses.dataclass(frozen=True)
class RoutingTable:
    """Everything a router needs, as of one revision; never changes."""

    revision: int
    backends: Mapping[str, str]
    contexts: Mapping[str, ContextState]
    routes: tuple[Route, ...]
    matcher: Matcher = dataclasses.field(repr=False, compare=False)

    @classmethod
    def build(
        cls,
        revision: int,
        backends: Mapping[str, str],
        contexts: Mapping[str, ContextState],
        routes: Iterable[Route],
    ) -> RoutingTable:
        routes = tuple(routes)
        return cls(
            revision,
            MappingProxyType(dict(backends)),
            MappingProxyType(dict(contexts)),
            routes,
            Matcher(routes),
        )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        return self.matcher.match(method, path)


class StateStore:
    """The routing state in one SQLite file; safe across processes."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        with self._connection() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            # Several processes may open a new file at once; one creates it.
            connection.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")

    # Changes -----------------------------------------------------------

    def set_backend(
        self, name: str, url: str, *, actor: str = "system", reason: str = ""
    ) -> int:
        """Point a backend name at a base URL (`http://127.0.0.1:5001`)."""
        if not url.startswith(("http://", "https://")):
            raise InvalidBackendUrl(name, url)

        url = url.rstrip("/")
        with self._changing() as connection:
            before = connection.execute(
                "SELECT url FROM backends WHERE name = ?", (name,)
            ).fetchone()
            if before is not None and before[0] == url:
                return _revision(connection)

            connection.execute(
                "INSERT INTO backends (name, url) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET url = excluded.url",
                (name, url),
            )
            return _record(
                connection, actor, None, f"backend {name}",
                before[0] if before else None, url, reason,
            )

    def register_routes(
        self,
        context: str,
        service_backend: str,
        routes: Iterable[tuple[str, str, str | None]],
        *,
        salt: str | None = None,
        actor: str = "system",
        reason: str = "",
    ) -> int:
        """Give a context its service and its full set of routes.

        `routes` are `(method, rule, bucket_key)`; they replace the
        context's earlier routes. Weight and writer stay as they were.
        """
        if service_backend == MONOLITH:
            raise InvalidService(context, service_backend)

        wanted = _routes_of(context, routes)
        with self._changing() as connection:
            _require_backend(connection, service_backend)
            _refuse_taken(connection, context, wanted)
            current = _context_row(connection, context)
            if current is None:
                revision = _create_context(
                    connection, context, service_backend, salt, actor, reason
                )
            else:
                revision = _update_context(
                    connection, current, service_backend, salt, actor, reason
                )

            before = _routes_text(_routes_in(connection, context))
            after = _routes_text(wanted.values())
            if before == after:
                return revision

            connection.execute("DELETE FROM routes WHERE context = ?", (context,))
            connection.executemany(
                "INSERT INTO routes (method, rule, context, bucket_key) "
                "VALUES (?, ?, ?, ?)",
                [(r.method, r.rule, context, r.bucket_key) for r in wanted.values()],
            )
            return _record(
                connection, actor, context, "routes", before or None, after, reason
            )

    def set_weight(self, context: str, weight: int, actor: str, reason: str) -> int:
        """Send `weight` % of the context's keyed reads to its service."""
        whole = isinstance(weight, int) and not isinstance(weight, bool)
        if not whole or not 0 <= weight <= 100:
            raise InvalidWeight(context, weight)

        return self._change(context, "read_weight", weight, actor, reason)

    def set_writer(self, context: str, writer: str, actor: str, reason: str) -> int:
        """Send the context's writes to `writer`: the monolith or its service."""
        with self._changing() as connection:
            current = _require_context(connection, context)
            allowed = (MONOLITH, current["service"])
            if writer not in allowed:
                raise InvalidWriter(context, writer, allowed)

            return _update(connection, current, "writer", writer, actor, reason)

    def hold_writes(self, context: str, held: bool, actor: str, reason: str) -> int:
        """Make routers hold (or release) the context's writes."""
        return self._change(context, "writes_held", int(held), actor, reason)

    def _change(
        self, context: str, column: str, value: int, actor: str, reason: str
    ) -> int:
        with self._changing() as connection:
            current = _require_context(connection, context)
            return _update(connection, current, column, value, actor, reason)

    # Reads -------------------------------------------------------------

    def revision(self) -> int:
        """The counter every change bumps; cheap enough to poll."""
        with self._connection() as connection:
            return _revision(connection)

    def snapshot(self) -> RoutingTable:
        """The whole routing table as of one revision."""
        with self._reading() as connection:
            revision = _revision(connection)
            backends = dict(connection.execute("SELECT name, url FROM backends"))
            contexts = {
                row["context"]: _context_state(row)
                for row in connection.execute("SELECT * FROM contexts")
            }
            routes = [
                Route(row["method"], row["rule"], row["context"], row["bucket_key"])
                for row in connection.execute(
                    "SELECT * FROM routes ORDER BY context, rule, method"
                )
            ]

        return RoutingTable.build(revision, backends, contexts, routes)

    def status(self) -> dict[str, ContextStatus]:
        """Per context: service, weight, writer, held writes and routes."""
        table = self.snapshot()
        return {
            name: ContextStatus(
                name, state.service, state.read_weight, state.writer,
                state.writes_held, state.salt,
                tuple(r for r in table.routes if r.context == name),
            )
            for name, state in sorted(table.contexts.items())
        }

    def history(self, context: str | None = None) -> tuple[LedgerEntry, ...]:
        """Ledger rows, oldest first; one context's, or all of them."""
        with self._reading() as connection:
            if context is None:
                rows = connection.execute("SELECT * FROM ledger ORDER BY id")
            else:
                _require_context(connection, context)
                rows = connection.execute(
                    "SELECT * FROM ledger WHERE context = ? ORDER BY id", (context,)
                )
            return tuple(_ledger_entry(row) for row in rows)

    # Connections -------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # Autocommit at the driver level: transactions begin where we say.
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as connection:
            # One read transaction: every table as of the same revision.
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                connection.execute("COMMIT")

    @contextlib.contextmanager
    def _changing(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as connection:
            # IMMEDIATE takes the write lock first, so a read-check-write
            # cannot interleave with another process's change.
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _revision(connection: sqlite3.Connection) -> int:
    value: int = connection.execute("SELECT value FROM revision").fetchone()[0]
    return value


def _record(
    connection: sqlite3.Connection,
    actor: str,
    context: str | None,
    what: str,
    before: object,
    after: object,
    reason: str,
) -> int:
    connection.execute("UPDATE revision SET value = value + 1")
    revision = _revision(connection)
    connection.execute(
        "INSERT INTO ledger (at, actor, context, what, from_value, to_value, "
        "reason, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (_now(), actor, context, what, _text(before), _text(after), reason, revision),
    )
    return revision


def _text(value: object) -> str | None:
    if value is None:
        return None

    return str(value)


def _context_row(connection: sqlite3.Connection, context: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = connection.execute(
        "SELECT * FROM contexts WHERE context = ?", (context,)
    ).fetchone()
    return row


def _require_context(connection: sqlite3.Connection, context: str) -> sqlite3.Row:
    row = _context_row(connection, context)
    if row is None:
        known = [name for (name,) in connection.execute("SELECT context FROM contexts")]
        raise UnknownContext(context, known)

    return row


def _require_backend(connection: sqlite3.Connection, backend: str) -> None:
    known = [name for (name,) in connection.execute("SELECT name FROM backends")]
    if backend not in known:
        raise UnknownBackend(backend, known)


def _update(
    connection: sqlite3.Connection,
    current: sqlite3.Row,
    column: str,
    value: object,
    actor: str,
    reason: str,
) -> int:
    before = current[column]
    if before == value:
        return _revision(connection)

    # `column` is one of this module's own names, never caller input.
    connection.execute(
        f"UPDATE contexts SET {column} = ? WHERE context = ?",
        (value, current["context"]),
    )
    if column == "writes_held":
        before, value = bool(before), bool(value)
    return _record(connection, actor, current["context"], column, before, value, reason)


def _create_context(
    connection: sqlite3.Connection,
    context: str,
    service: str,
    salt: str | None,
    actor: str,
    reason: str,
) -> int:
    connection.execute(
        "INSERT INTO contexts (context, service, read_weight, writer, writes_held, "
        "salt) VALUES (?, ?, 0, ?, 0, ?)",
        (context, service, MONOLITH, context if salt is None else salt),
    )
    return _record(connection, actor, context, "service", None, service, reason)


def _update_context(
    connection: sqlite3.Connection,
    current: sqlite3.Row,
    service: str,
    salt: str | None,
    actor: str,
    reason: str,
) -> int:
    revision = _revision(connection)
    if current["service"] != service:
        if current["writer"] == current["service"]:
            raise ServiceStillWrites(current["context"], current["service"], service)

        revision = _update(connection, current, "service", service, actor, reason)

    if salt is not None:
        revision = _update(connection, current, "salt", salt, actor, reason)

    return revision


def _routes_of(
    context: str, routes: Iterable[tuple[str, str, str | None]]
) -> dict[tuple[str, str], Route]:
    wanted: dict[tuple[str, str], Route] = {}
    for method, rule, bucket_key in routes:
        route = Route(method.upper(), rule, context, bucket_key)
        check_route(route)
        earlier = wanted.get((route.method, rule))
        if earlier is not None and earlier != route:
            raise InvalidRule(
                rule,
                f"{route.method} is listed twice with bucket keys "
                f"'{earlier.bucket_key}' and '{bucket_key}'",
            )

        wanted[(route.method, rule)] = route
    return wanted


def _refuse_taken(
    connection: sqlite3.Connection,
    context: str,
    wanted: Mapping[tuple[str, str], Route],
) -> None:
    for method, rule, owner in connection.execute(
        "SELECT method, rule, context FROM routes WHERE context != ?", (context,)
    ):
        if (method, rule) in wanted:
            raise RouteTaken(method, rule, owner, context)


def _routes_in(connection: sqlite3.Connection, context: str) -> list[Route]:
    return [
        Route(method, rule, context, bucket_key)
        for method, rule, bucket_key in connection.execute(
            "SELECT method, rule, bucket_key FROM routes WHERE context = ?",
            (context,),
        )
    ]


def _routes_text(routes: Iterable[Route]) -> str:
    lines = sorted(
        f"{r.method} {r.rule}" + (f" [{r.bucket_key}]" if r.bucket_key else "")
        for r in routes
    )
    return "; ".join(lines)


def _context_state(row: sqlite3.Row) -> ContextState:
    return ContextState(
        row["context"],
        row["service"],
        row["read_weight"],
        row["writer"],
        bool(row["writes_held"]),
        row["salt"],
    )


def _ledger_entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        row["id"],
        row["at"],
        row["actor"],
        row["context"],
        row["what"],
        row["from_value"],
        row["to_value"],
        row["reason"],
        row["revision"],
    )
