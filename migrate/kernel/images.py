"""Row images of declared aggregates, recorded with the change that made them.

A context that declares aggregates in the manifest (a root table, its key,
and child tables that hang off the root by a foreign key) needs no replica
code of its own. The unit of work of a command watches the statements it
runs on those tables; at commit, in the same transaction, it bumps each
touched aggregate's version in `migrate_versions` and records the
aggregate's whole row image (the root row and every child row) as a kit
event, `AggregateChanged`, in the context's outbox beside the context's own
events. A replica (`migrate.hosts.replica`) keeps the image with the highest
version, so images that arrive twice, late or out of order change nothing
they should not.

What it guarantees:

- Every INSERT, UPDATE and DELETE built with SQLAlchemy Core on a declared
  table, inside a command's unit of work, is seen. An UPDATE or DELETE finds
  the aggregates it touches by selecting their keys with its own WHERE
  clause, on the same connection, just before it runs.
- The version is taken before the image is read, in the same transaction:
  of two commands that touch one aggregate, the later commit has the higher
  version and an image that includes the earlier one's change.
- Images are recorded root tables first, in the metadata's dependency
  order, so a replica that applies them in outbox order meets a parent
  before the rows that refer to it.

What it does not do: see textual SQL (`text()`, `exec_driver_sql`); follow
an INSERT ... SELECT (refused with `ImageError`, naming the table) or an
UPDATE that changes an aggregate's key; track queries, or any unit of work
that is not a command (a replica's own updates record nothing, so nothing
echoes back).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.kernel.events import Envelope
from migrate.kernel.sql import VERSIONS

IMAGE_EVENT = "AggregateChanged"
IMAGE_SCHEMA_VERSION = 1


class ImageError(Exception):
    """A declared aggregate that cannot be built, or a change it cannot follow."""


@dataclasses.dataclass(frozen=True)
class Child:
    table: sa.Table
    # The child's columns that hold the root's key, in the key's order.
    columns: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Aggregate:
    name: str
    root: sa.Table
    key: tuple[str, ...]
    children: tuple[Child, ...] = ()

    def columns_of(self, table: str) -> tuple[str, ...] | None:
        """The columns of `table` that hold this aggregate's key, if it is one
        of the aggregate's tables."""
        if table == self.root.name:
            return self.key

        return next((c.columns for c in self.children if c.table.name == table), None)


def build_aggregates(
    context: str, metadata: sa.MetaData, specs: Iterable[Any]
) -> tuple[Aggregate, ...]:
    """Aggregates over a context's tables, root tables in dependency order.

    `specs` carry `name`, `root`, `key` and `children` (table and column
    names, as the manifest declares them).
    """
    built = [_aggregate(context, metadata, spec) for spec in specs]
    order = {table.name: n for n, table in enumerate(metadata.sorted_tables)}
    return tuple(sorted(built, key=lambda a: order[a.root.name]))


def _aggregate(context: str, metadata: sa.MetaData, spec: Any) -> Aggregate:
    where = f"context {context}, aggregate {spec.name}"
    root = _table(metadata, spec.root, where)
    for column in spec.key:
        if column not in root.c:
            raise ImageError(
                f"{where}: key column {column!r} is not a column of {root.name} "
                f"(its columns are {', '.join(root.c.keys())})"
            )

    children = []
    for name in spec.children:
        child = _table(metadata, name, where)
        children.append(Child(child, _columns_onto(child, root, spec.key, where)))
    return Aggregate(spec.name, root, tuple(spec.key), tuple(children))


def _table(metadata: sa.MetaData, name: str, where: str) -> sa.Table:
    if name not in metadata.tables:
        raise ImageError(f"{where}: table {name!r} is not in the context's metadata")

    return metadata.tables[name]


def _columns_onto(
    child: sa.Table, root: sa.Table, key: Sequence[str], where: str
) -> tuple[str, ...]:
    """The child's columns whose foreign key points at the root's key."""
    for constraint in child.foreign_key_constraints:
        if constraint.referred_table is not root:
            continue

        onto = {e.column.name: e.parent.name for e in constraint.elements}
        if set(onto) == set(key):
            return tuple(onto[column] for column in key)

    raise ImageError(
        f"{where}: child table {child.name} has no foreign key onto "
        f"{root.name}({', '.join(key)}); a child hangs off its root's key"
    )


class ChangeTracker:
    """The aggregates one unit of work touched, in the order it touched them."""

    def __init__(self, context: str, aggregates: Sequence[Aggregate]):
        self.context = context
        self.aggregates = tuple(aggregates)
        self._tables: dict[str, tuple[Aggregate, tuple[str, ...]]] = {}
        for aggregate in self.aggregates:
            for table in (aggregate.root, *(c.table for c in aggregate.children)):
                columns = aggregate.columns_of(table.name)
                assert columns is not None
                self._tables[table.name] = (aggregate, columns)
        self._touched: dict[str, dict[tuple, None]] = {}

    def watch(self, connection: Connection) -> None:
        sa.event.listen(connection, "before_execute", self._before)
        sa.event.listen(connection, "after_execute", self._after)

    def _tracked(self, statement: Any) -> tuple[Aggregate, tuple[str, ...]] | None:
        if not isinstance(statement, sa.Insert | sa.Update | sa.Delete):
            return None

        table = statement.table
        return self._tables.get(getattr(table, "name", ""))

    def _before(
        self,
        connection: Connection,
        statement: Any,
        multiparams: Any,
        params: Any,
        options: Any,
    ) -> None:
        found = self._tracked(statement)
        if found is None or isinstance(statement, sa.Insert):
            return

        aggregate, columns = found
        table = statement.table
        query = sa.select(*(table.c[c] for c in columns))
        if statement.whereclause is not None:
            query = query.where(statement.whereclause)
        for parameters in multiparams or [params or {}]:
            for row in connection.execute(query.distinct(), parameters):
                self.touch(aggregate, tuple(row))

    def _after(
        self,
        connection: Connection,
        statement: Any,
        multiparams: Any,
        params: Any,
        options: Any,
        result: Any,
    ) -> None:
        found = self._tracked(statement)
        if found is None or not isinstance(statement, sa.Insert):
            return

        aggregate, columns = found
        if getattr(statement, "select", None) is not None:
            raise ImageError(
                f"INSERT ... SELECT into {statement.table.name}: the kit follows "
                f"aggregate {aggregate.name} row by row; insert the rows' values"
            )

        rows = _inserted_rows(connection, statement, multiparams, params)
        table: Any = statement.table
        for row in rows:
            key = tuple(row.get(c) for c in columns)
            if None in key and len(rows) == 1 and result.inserted_primary_key:
                # A key the database chose: the root's own primary key.
                named = dict(zip(
                    [c.name for c in table.primary_key.columns],
                    result.inserted_primary_key, strict=True,
                ))
                key = tuple(named.get(c, row.get(c)) for c in columns)
            if None in key:
                raise ImageError(
                    f"an insert into {statement.table.name} leaves aggregate "
                    f"{aggregate.name}'s key ({', '.join(columns)}) unknown"
                )
            self.touch(aggregate, key)

    def touch(self, aggregate: Aggregate, key: tuple) -> None:
        self._touched.setdefault(aggregate.name, {})[key] = None

    def record(self, connection: Connection, origin: str) -> list[Envelope]:
        """Bump each touched aggregate's version and read its image, in the
        unit of work's transaction; the envelopes go to the outbox."""
        envelopes = []
        for aggregate in self.aggregates:
            for key in self._touched.pop(aggregate.name, {}):
                version = bump_version(connection, self.context, aggregate, key)
                image = read_image(connection, aggregate, key)
                envelopes.append(
                    image_envelope(self.context, aggregate, key, version, image, origin)
                )
        return envelopes


def _inserted_rows(
    connection: Connection, statement: Any, multiparams: Any, params: Any
) -> list[dict[str, Any]]:
    multi = getattr(statement, "_multi_values", ())
    if multi:
        names = [c.name for c in statement.table.columns]
        return [
            {_name(k): v for k, v in row.items()}
            if isinstance(row, Mapping) else dict(zip(names, row, strict=False))
            for row in multi[0]
        ]

    if getattr(statement, "_values", None):
        compiled = statement.compile(dialect=connection.dialect)
        return [
            dict(compiled.construct_params(p or None))
            for p in (multiparams or [params or {}])
        ]

    return [dict(p) for p in (multiparams or [params or {}])]


def _name(key: Any) -> str:
    return key if isinstance(key, str) else str(key.key)


def key_text(key: Sequence[Any]) -> str:
    return json.dumps(list(key), separators=(",", ":"), default=str)


def bump_version(
    connection: Connection, context: str, aggregate: Aggregate, key: tuple
) -> int:
    where = _version_row(context, aggregate.name, key)
    bumped = connection.execute(
        VERSIONS.update()
        .where(where)
        .values(version=VERSIONS.c.version + 1, removed=False)
    )
    if bumped.rowcount == 0:
        connection.execute(
            VERSIONS.insert().values(
                context=context,
                aggregate=aggregate.name,
                aggregate_key=key_text(key),
                version=1,
                removed=False,
            )
        )
        return 1

    version = connection.execute(sa.select(VERSIONS.c.version).where(where)).scalar()
    assert version is not None
    return int(version)


def _version_row(context: str, aggregate: str, key: Sequence[Any]) -> Any:
    return (
        (VERSIONS.c.context == context)
        & (VERSIONS.c.aggregate == aggregate)
        & (VERSIONS.c.aggregate_key == key_text(key))
    )


def read_image(
    connection: Connection, aggregate: Aggregate, key: tuple
) -> dict[str, Any]:
    root = aggregate.root
    row = connection.execute(
        sa.select(root).where(*_matching(root, aggregate.key, key))
    ).first()
    children = {}
    for child in aggregate.children:
        rows = connection.execute(
            sa.select(child.table)
            .where(*_matching(child.table, child.columns, key))
            .order_by(*child.table.primary_key.columns)
        )
        children[child.table.name] = [_plain_row(r._mapping) for r in rows]
    return {
        "root": None if row is None else _plain_row(row._mapping),
        "children": children,
    }


def _matching(table: sa.Table, columns: Sequence[str], key: Sequence[Any]) -> list:
    return [table.c[c] == v for c, v in zip(columns, key, strict=True)]


def image_envelope(
    context: str,
    aggregate: Aggregate,
    key: tuple,
    version: int,
    image: dict[str, Any],
    origin: str,
) -> Envelope:
    return Envelope(
        event_id=str(uuid.uuid4()),
        event_type=IMAGE_EVENT,
        context=context,
        aggregate_id="/".join(str(v) for v in key),
        schema_version=IMAGE_SCHEMA_VERSION,
        origin=origin,
        occurred_at=datetime.datetime.now(datetime.UTC).isoformat(),
        data={
            "aggregate": aggregate.name,
            "key": [_plain(v) for v in key],
            "version": version,
            **image,
        },
    )


def _plain_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(name): _plain(value) for name, value in row.items()}


def _plain(value: Any) -> Any:
    """A column's value as JSON carries it; `restore` reads it back."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def restore(column: sa.Column, value: Any) -> Any:
    """A value from an image back to what the column's type takes."""
    if value is None:
        return None

    try:
        kind = column.type.python_type
    except NotImplementedError:
        return value

    if kind is Decimal:
        return Decimal(value)
    if kind is datetime.datetime:
        return datetime.datetime.fromisoformat(value)
    if kind is datetime.date:
        return datetime.date.fromisoformat(value)
    if kind is datetime.time:
        return datetime.time.fromisoformat(value)
    if kind is bytes:
        return bytes.fromhex(value)
    return value
