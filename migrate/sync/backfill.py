"""Copy a context's tables from the monolith into its service, then check.

What is copied where is the context's declared mapping (`migrate.sync.
mapping`): each service table is filled from one monolith table, columns
renamed or converted as the manifest says, and verify compares the
monolith's rows *as converted* with the service's, so a service shaped
otherwise than the monolith is backfilled and checked the same way.

Hand-off to sync: the service's follow queue is subscribed before the
backfill starts; the backfill records the source outbox's last position
*before* it reads, so every change committed after that point reaches the
copy as an event, and the copy's row versions (where a table has them) keep
the newest state whichever arrives first. Rows are copied in key
order in chunks, skipping rows the copy already has; each chunk commits with
a checkpoint (the last key copied, per service table), so a backfill killed
at any point resumes after its last chunk, with the position it first
recorded.
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
from migrate.sync.mapping import ColumnMap, TableMap, map_of_total, table_maps

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
    """A row that differs: the monolith's converted to the service's shape
    (None when only the service has it) beside the service's own."""

    table: str
    key: list
    monolith: dict | None
    service: dict | None


# A chunk as a key range: after the first key (exclusive; None from the
# start) up to the second (inclusive; None to the end).
KeyRange = tuple[tuple | None, tuple | None]


@dataclasses.dataclass(frozen=True)
class Parity:
    """Counts per service table, totals per `totals` entry (in the
    monolith's unit), and per table (chunks that differ, chunks compared)."""

    counts: dict[str, tuple[int, int]]
    totals: dict[str, tuple[int, int]]
    chunks: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    first_rows: list[RowDifference] = dataclasses.field(default_factory=list)
    differing: dict[str, list[KeyRange]] = dataclasses.field(
        default_factory=dict, repr=False
    )

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
    """The context's own tables in the monolith, in dependency order,
    without its queues (what a copy reads)."""
    metadata: sa.MetaData = context.load(context.metadata)
    queues = {f"{context.name}_outbox", f"{context.name}_inbox"}
    return [t for t in metadata.sorted_tables if t.name not in queues]


def backfill(
    context: Context, source: Engine, target: Engine, progress: Progress | None = None
) -> BackfillReport:
    """Copy every service table from the monolith; rows copied per table."""
    report = progress or (lambda table, done, total: None)
    maps = table_maps(context)
    position, resumed = _start(context, source, target)

    copied: dict[str, int] = {}
    for mapped in maps:
        start = resumed.get(mapped.name)
        copied[mapped.name] = _copy_table(
            context.name, mapped, source, target, report, start
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
    mapped: TableMap,
    source: Engine,
    target: Engine,
    report: Progress,
    resume: tuple[tuple, int] | None,
) -> int:
    key = mapped.source_key
    total = _count(source, mapped.source)

    last, done = resume if resume else (None, 0)
    copied = 0
    while True:
        query = mapped.source_select().order_by(*key).limit(CHUNK)
        if last is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*last))
        with source.connect() as db:
            rows = _dicts(db.execute(query))
        if not rows:
            break

        last = mapped.source_key_of(rows[-1])
        done += len(rows)
        with target.begin() as db:
            # A row the copy has already (from sync, or from an earlier run)
            # is newer or the same: keep it.
            copied += _insert_missing(db, mapped.target, mapped.convert(rows))
            _checkpoint(db, context, mapped.name, last, done)
        report(mapped.name, done, total)
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
    columns = list(rows[0])
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

    Each chunk is a range of keys taken from the monolith; its rows are
    converted to the service's shape and hashed, the same range is read
    from the service and hashed over the same (mapped) columns, so a row
    that differs anywhere, or that only one side has, marks its chunk. The
    first `show` differing rows are given whole, both sides in the
    service's shape.
    """
    maps = table_maps(context)
    counts = {}
    chunks = {}
    differing: dict[str, list[KeyRange]] = {}
    first_rows: list[RowDifference] = []
    for mapped in maps:
        counts[mapped.name] = (
            _count(source, mapped.source),
            _count(target, mapped.target),
        )
        bad: list[KeyRange] = []
        total = _compare_chunks(mapped, source, target, first_rows, show, bad)
        chunks[mapped.name] = (len(bad), total)
        differing[mapped.name] = bad
    return Parity(
        counts, _totals(context, maps, source, target), chunks, first_rows, differing
    )


def recheck(
    context: Context, source: Engine, target: Engine, earlier: Parity, show: int = 5
) -> Parity:
    """Compare again what `earlier` found different: counts and totals
    whole, and only the chunks that differed, each once."""
    maps = table_maps(context)
    counts = {
        m.name: (_count(source, m.source), _count(target, m.target)) for m in maps
    }
    chunks = {}
    differing: dict[str, list[KeyRange]] = {}
    first_rows: list[RowDifference] = []
    for mapped in maps:
        still = [
            span
            for span in earlier.differing.get(mapped.name, [])
            if not _same_range(mapped, source, target, span, first_rows, show)
        ]
        chunks[mapped.name] = (len(still), earlier.chunks.get(mapped.name, (0, 0))[1])
        differing[mapped.name] = still
    return Parity(
        counts, _totals(context, maps, source, target), chunks, first_rows, differing
    )


def _totals(
    context: Context, maps: list[TableMap], source: Engine, target: Engine
) -> dict[str, tuple[int, int]]:
    """Each total as (monolith, service), both in the monolith's unit."""
    totals = {}
    for spec in context.totals:
        table_name, _, column = spec.partition(".")
        into = map_of_total(context, maps, spec)
        mapped = next(m for m in maps if m.column_from(column) is into)
        source_sum = _sum(source, mapped.source.c[column])
        if into.converter is None:
            target_sum = _sum(target, mapped.target.c[into.target])
        else:
            target_sum = _restored_sum(target, mapped.target.c[into.target], into)
        totals[spec] = (source_sum, target_sum)
    return totals


VERIFY_CHUNK = 5000


def _compare_chunks(
    mapped: TableMap,
    source: Engine,
    target: Engine,
    found: list,
    show: int,
    bad: list[KeyRange],
) -> int:
    """How many chunks of one table were compared; the differing ones'
    key ranges go to `bad`."""
    key = mapped.source_key
    ordered = mapped.source_select().order_by(*key)
    total = 0
    last: tuple | None = None
    while True:
        query = (
            ordered
            if last is None
            else ordered.where(sa.tuple_(*key) > sa.tuple_(*last))
        )
        with source.connect() as db:
            rows = _dicts(db.execute(query.limit(VERIFY_CHUNK)))
        upper = mapped.source_key_of(rows[-1]) if rows else None
        mine = mapped.convert(rows)
        theirs = _service_rows(mapped, target, (last, upper))
        if not mine and not theirs:
            return total

        total += 1
        if _digest(mine) != _digest(theirs):
            bad.append((last, upper))
            _first_differences(mapped, mine, theirs, found, show)
        if upper is None:
            return total
        last = upper


def _same_range(
    mapped: TableMap,
    source: Engine,
    target: Engine,
    span: KeyRange,
    found: list,
    show: int,
) -> bool:
    mine = mapped.convert(_monolith_rows(mapped, source, span))
    theirs = _service_rows(mapped, target, span)
    if _digest(mine) == _digest(theirs):
        return True

    _first_differences(mapped, mine, theirs, found, show)
    return False


def _within(query: sa.Select, key: list[sa.Column], span: KeyRange) -> sa.Select:
    after, upper = span
    if after is not None:
        query = query.where(sa.tuple_(*key) > sa.tuple_(*after))
    if upper is not None:
        query = query.where(sa.tuple_(*key) <= sa.tuple_(*upper))
    return query.order_by(*key)


def _monolith_rows(mapped: TableMap, source: Engine, span: KeyRange) -> list[dict]:
    with source.connect() as db:
        return _dicts(
            db.execute(_within(mapped.source_select(), mapped.source_key, span))
        )


def _service_rows(mapped: TableMap, target: Engine, span: KeyRange) -> list[dict]:
    with target.connect() as db:
        return _dicts(
            db.execute(_within(mapped.target_select(), mapped.target_key, span))
        )


def _dicts(result: sa.CursorResult) -> list[dict]:
    # Much faster than Row._mapping per row, which rebuilds its keys each time.
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result.tuples()]


def _digest(rows: list[dict]) -> str:
    # Both sides hold the service's columns in the same order.
    return hashlib.sha256(repr([tuple(r.values()) for r in rows]).encode()).hexdigest()


def _first_differences(
    mapped: TableMap,
    mine: list[dict],
    theirs: list[dict],
    found: list,
    show: int,
) -> None:
    names = mapped.key_names

    def by_key(rows: list[dict]) -> dict[tuple, dict]:
        return {tuple(r[name] for name in names): r for r in rows}

    left, right = by_key(mine), by_key(theirs)
    for k in sorted(set(left) | set(right), key=str):
        if len(found) >= show:
            return
        if left.get(k) != right.get(k):
            found.append(RowDifference(mapped.name, list(k), left.get(k), right.get(k)))


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


def _restored_sum(engine: Engine, column: sa.Column, mapped: ColumnMap) -> int:
    """Sum a converted column in the monolith's unit, row by row."""
    assert mapped.converter is not None
    total = 0
    with engine.connect() as db:
        for (value,) in db.execute(sa.select(column)).tuples():
            restored = mapped.converter.restore(value)
            total += int(restored or 0)
    return total


def _sum(engine: Engine, column: sa.Column) -> int:
    with engine.connect() as db:
        return int(
            db.execute(sa.select(sa.func.coalesce(sa.func.sum(column), 0))).scalar()
            or 0
        )
