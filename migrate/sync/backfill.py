"""Copy a context's tables from the monolith into its service, then check.

Hand-off to sync: the service's follow queue is subscribed before the
backfill starts; the backfill records the source outbox's last position
*before* it reads, so every change committed after that point reaches the
copy as an event, and the copy's row versions (where a table has them) keep
the newest state whichever arrives first. Rows are copied in primary-key
order in chunks, skipping rows the copy already has; each chunk commits with
a checkpoint (the last key copied), so a backfill killed at any point
resumes after its last chunk, with the position it first recorded.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from migrate.errors import ParityError
from migrate.hosts.tables import backfills, checkpoints
from migrate.kernel.uow import now, queue_tables
from migrate.manifest import Context

# Rows per chunk (each chunk one transaction and one checkpoint); the
# environment can lower it to checkpoint more often.
CHUNK = int(os.environ.get("MIGRATE_BACKFILL_CHUNK", "2000"))

Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class BackfillReport:
    copied: dict[str, int]
    source_position: int


@dataclasses.dataclass(frozen=True)
class RowDifference:
    table: str
    key: list
    monolith: dict | None
    service: dict | None


@dataclasses.dataclass(frozen=True)
class Parity:
    counts: dict[str, tuple[int, int]]
    totals: dict[str, tuple[int, int]]
    chunks: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    first_rows: list[RowDifference] = dataclasses.field(default_factory=list)

    @property
    def differences(self) -> list[str]:
        found = [
            f"{table}: {source} rows in the monolith, {copy} in the service"
            for table, (source, copy) in self.counts.items()
            if source != copy
        ]
        found += [
            f"sum of {column}: {source} in the monolith, {copy} in the service"
            for column, (source, copy) in self.totals.items()
            if source != copy
        ]
        found += [
            f"{table}: {bad} of {total} chunks differ"
            for table, (bad, total) in self.chunks.items()
            if bad
        ]
        return found


def data_tables(context: Context) -> list[sa.Table]:
    """The context's own tables in dependency order, without its queues."""
    metadata: sa.MetaData = context.load(context.metadata)
    queues = {f"{context.name}_outbox", f"{context.name}_inbox"}
    return [t for t in metadata.sorted_tables if t.name not in queues]


def backfill(
    context: Context, source: Engine, target: Engine, progress: Progress | None = None
) -> BackfillReport:
    report = progress or (lambda table, done, total: None)
    position, resumed = _start(context, source, target)

    copied: dict[str, int] = {}
    for table in data_tables(context):
        start = resumed.get(table.name)
        copied[table.name] = _copy_table(
            context.name, table, source, target, report, start
        )

    with target.begin() as db:
        db.execute(
            backfills.update()
            .where(backfills.c.context == context.name)
            .values(finished_at=now())
        )
    return BackfillReport(copied, position)


def _start(
    context: Context, source: Engine, target: Engine
) -> tuple[int, dict[str, tuple[tuple, int]]]:
    """The snapshot position, and where each table stopped if this resumes."""
    with target.begin() as db:
        earlier = db.execute(
            sa.select(backfills).where(backfills.c.context == context.name)
        ).first()
        if earlier is not None and earlier.finished_at is None:
            rows = db.execute(
                sa.select(checkpoints).where(checkpoints.c.context == context.name)
            )
            return earlier.source_position, {
                r.table_name: (tuple(json.loads(r.last_key)), r.rows_seen) for r in rows
            }

        outbox, _ = queue_tables(context.name)
        with source.connect() as sdb:
            position = sdb.execute(sa.select(sa.func.max(outbox.c.position))).scalar()
        db.execute(backfills.delete().where(backfills.c.context == context.name))
        db.execute(checkpoints.delete().where(checkpoints.c.context == context.name))
        db.execute(
            backfills.insert().values(
                context=context.name, source_position=position or 0, started_at=now()
            )
        )
        return position or 0, {}


def _copy_table(
    context: str,
    table: sa.Table,
    source: Engine,
    target: Engine,
    report: Progress,
    resume: tuple[tuple, int] | None,
) -> int:
    key = list(table.primary_key.columns)
    with source.connect() as db:
        total = db.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0

    last, done = resume if resume else (None, 0)
    copied = 0
    while True:
        query = sa.select(table).order_by(*key).limit(CHUNK)
        if last is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*last))
        with source.connect() as db:
            rows = _dicts(db.execute(query))
        if not rows:
            break

        last = tuple(rows[-1][c.name] for c in key)
        done += len(rows)
        with target.begin() as db:
            # A row the copy has already (from sync, or from an earlier run)
            # is newer or the same: keep it.
            copied += _insert_missing(db, table, rows)
            _checkpoint(db, context, table.name, last, done)
        report(table.name, done, total)
    return copied


def _checkpoint(
    db: sa.Connection, context: str, table: str, last: tuple, done: int
) -> None:
    where = (checkpoints.c.context == context) & (checkpoints.c.table_name == table)
    values = {"last_key": json.dumps(list(last)), "rows_seen": done}
    if db.execute(checkpoints.update().where(where).values(**values)).rowcount == 0:
        db.execute(
            checkpoints.insert().values(context=context, table_name=table, **values)
        )


def _insert_missing(db: sa.Connection, table: sa.Table, rows: list[dict]) -> int:
    """Insert the rows the copy lacks; return how many that was."""
    dialect = db.dialect.name
    if dialect == "sqlite":
        return int(
            db.execute(sqlite.insert(table).on_conflict_do_nothing(), rows).rowcount
        )
    if dialect == "postgresql":
        return _copy_in(db, table, rows)
    raise NotImplementedError(
        f"backfill into {dialect}: the kit copies into SQLite and PostgreSQL"
    )


def _copy_in(db: sa.Connection, table: sa.Table, rows: list[dict]) -> int:
    """PostgreSQL: COPY into a scratch table, then insert what is missing.

    COPY is PostgreSQL's fastest way in, but it cannot skip rows that exist;
    the scratch table lets one INSERT ... SELECT ... ON CONFLICT do that.
    """
    columns = [c.name for c in table.columns]
    scratch = f"backfill_{table.name}"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([_csv_value(row[c]) for c in columns])
    buffer.seek(0)
    listed = ", ".join(columns)
    db.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {scratch} "
        f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    cursor = db.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.copy_expert(
        f"COPY {scratch} ({listed}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer
    )
    inserted = db.exec_driver_sql(
        f"INSERT INTO {table.name} ({listed}) SELECT {listed} FROM {scratch} "
        "ON CONFLICT DO NOTHING"
    )
    return int(inserted.rowcount)


def _csv_value(value: object) -> object:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return value


def parity(context: Context, source: Engine, target: Engine, show: int = 5) -> Parity:
    """Compare counts, totals, and checksums of key-ordered chunks of rows.

    Each chunk is a range of primary keys taken from the monolith; the same
    range is read from the copy and both are hashed over every column, so a
    row that differs anywhere, or that only one side has, marks its chunk.
    The first `show` differing rows are given whole.
    """
    counts = {}
    chunks = {}
    first_rows: list[RowDifference] = []
    for table in data_tables(context):
        counts[table.name] = (_count(source, table), _count(target, table))
        chunks[table.name] = _compare_chunks(table, source, target, first_rows, show)

    metadata: sa.MetaData = context.load(context.metadata)
    totals = {}
    for spec in context.totals:
        table_name, _, column = spec.partition(".")
        column_ = metadata.tables[table_name].c[column]
        totals[spec] = (_sum(source, column_), _sum(target, column_))
    return Parity(counts, totals, chunks, first_rows)


VERIFY_CHUNK = 5000


def _compare_chunks(
    table: sa.Table, source: Engine, target: Engine, found: list, show: int
) -> tuple[int, int]:
    """(chunks that differ, chunks compared) for one table."""
    key = list(table.primary_key.columns)
    ordered = sa.select(table).order_by(*key)
    bad = total = 0
    last: tuple | None = None
    while True:
        query = (
            ordered
            if last is None
            else ordered.where(sa.tuple_(*key) > sa.tuple_(*last))
        )
        with source.connect() as db:
            mine = _dicts(db.execute(query.limit(VERIFY_CHUNK)))
        upper = tuple(mine[-1][c.name] for c in key) if mine else None
        theirs_query = (
            query
            if upper is None
            else query.where(sa.tuple_(*key) <= sa.tuple_(*upper))
        )
        with target.connect() as db:
            theirs = _dicts(db.execute(theirs_query))
        if not mine and not theirs:
            return bad, total

        total += 1
        if _digest(mine) != _digest(theirs):
            bad += 1
            _first_differences(table, key, mine, theirs, found, show)
        if upper is None:
            return bad, total
        last = upper


def _dicts(result: sa.CursorResult) -> list[dict]:
    # Much faster than Row._mapping per row, which rebuilds its keys each time.
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result.tuples()]


def _digest(rows: list[dict]) -> str:
    # Both sides select the same columns in the same order.
    return hashlib.sha256(repr([tuple(r.values()) for r in rows]).encode()).hexdigest()


def _first_differences(
    table: sa.Table,
    key: list,
    mine: list[dict],
    theirs: list[dict],
    found: list,
    show: int,
) -> None:
    def by_key(rows: list[dict]) -> dict[tuple, dict]:
        return {tuple(r[c.name] for c in key): r for r in rows}

    left, right = by_key(mine), by_key(theirs)
    for k in sorted(set(left) | set(right), key=str):
        if len(found) >= show:
            return
        if left.get(k) != right.get(k):
            found.append(RowDifference(table.name, list(k), left.get(k), right.get(k)))


def verify(context: Context, source: Engine, target: Engine) -> Parity:
    found = parity(context, source, target)
    if found.differences:
        raise ParityError(
            f"{context.name}'s copy differs from the monolith: "
            + "; ".join(found.differences)
        )

    return found


def _count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as db:
        return db.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0


def _sum(engine: Engine, column: sa.Column) -> int:
    with engine.connect() as db:
        return int(
            db.execute(sa.select(sa.func.coalesce(sa.func.sum(column), 0))).scalar()
            or 0
        )
