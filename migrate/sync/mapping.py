"""How each of a service's tables is filled from the monolith's, declared.

The service's tables may differ from the monolith's: another name, renamed
columns, money stored as decimal text instead of cents, a column the
monolith lacks. The manifest says so (`[contexts.<name>.copy.<table>]`, see
`migrate.manifest`); `table_maps` turns the declaration and the two
imported MetaData into one `TableMap` per service table, in the service's
dependency order, for backfill and verify to share:

- a service table without a block is filled from the monolith table of the
  same name; a column without an entry from the monolith column of the same
  name; so a service shaped like the monolith needs no block at all;
- a column comes from a monolith column (renamed, and through one of the
  converters of `migrate.sync.convert` if named), or is a constant;
- the key (the service table's primary key unless the block names one)
  matches a row on both sides and orders the chunks; its columns are
  copied as they are, renamed at most, so both sides sort them alike;
- a service column with no source must be one the database fills itself
  (a default, or nullable); it is then left out of copies and comparisons.

Every problem raises `ManifestError` naming the table, the column and the
rule, before a row moves. What it does not do: merge two monolith tables
into one service table, or split one row into several (a block maps one
row to one row; two blocks may read the same monolith table).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from migrate.errors import ManifestError
from migrate.manifest import ColumnCopy, Context, TableCopy
from migrate.sync.convert import CONVERTERS, Converter


@dataclasses.dataclass(frozen=True)
class ColumnMap:
    target: str
    source: str | None
    converter: Converter | None = None
    constant: Any = None


@dataclasses.dataclass(frozen=True)
class TableMap:
    """One service table, the monolith table it is filled from, and how."""

    source: sa.Table
    target: sa.Table
    columns: tuple[ColumnMap, ...]
    key: tuple[tuple[str, str], ...]  # (service column, monolith column)

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def identity(self) -> bool:
        """A row of the monolith is a row of the service, as it is."""
        return len(self.columns) == len(self.target.columns) and all(
            c.source == c.target and c.converter is None for c in self.columns
        )

    @property
    def source_key(self) -> list[sa.Column]:
        return [self.source.c[s] for _, s in self.key]

    @property
    def target_key(self) -> list[sa.Column]:
        return [self.target.c[t] for t, _ in self.key]

    @property
    def key_names(self) -> list[str]:
        """The key as it is named in converted rows (the service's names)."""
        return [t for t, _ in self.key]

    def source_select(self) -> sa.Select:
        """What to read of the monolith's table. For an identity map the
        columns come in the service table's order, so rows need no change."""
        wanted: list[str] = []
        for column in self.columns:
            if column.source is not None and column.source not in wanted:
                wanted.append(column.source)
        for _, source in self.key:
            if source not in wanted:
                wanted.append(source)
        return sa.select(*(self.source.c[name] for name in wanted))

    def target_select(self) -> sa.Select:
        return sa.select(*(self.target.c[c.target] for c in self.columns))

    def source_key_of(self, row: dict[str, Any]) -> tuple:
        return tuple(row[s] for _, s in self.key)

    def convert(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Monolith rows (from `source_select`) as the service's rows."""
        if self.identity:
            return rows

        converted = []
        for row in rows:
            out: dict[str, Any] = {}
            for column in self.columns:
                if column.source is None:
                    out[column.target] = column.constant
                    continue
                value = row[column.source]
                if column.converter is not None:
                    try:
                        value = column.converter(value)
                    except ValueError as error:
                        raise ValueError(
                            f"{self.source.name}.{column.source} of row "
                            f"{self.source_key_of(row)} for {self.name}."
                            f"{column.target}: {error}"
                        ) from None
                out[column.target] = value
            converted.append(out)
        return converted

    def column_from(self, source_column: str) -> ColumnMap | None:
        """The first service column filled from a monolith column."""
        return next((c for c in self.columns if c.source == source_column), None)


def table_maps(context: Context) -> list[TableMap]:
    """Every service table of the context with its map, parents first."""
    source_md: sa.MetaData = context.load(context.metadata)
    target_md: sa.MetaData = context.load(context.service_tables)
    queues = {f"{context.name}_outbox", f"{context.name}_inbox"}
    blocks = {block.table: block for block in context.copies}

    for name in blocks:
        if name not in target_md.tables:
            raise ManifestError(
                f"context {context.name}: copy block {name!r} names no table of "
                f"the service; its tables are {', '.join(sorted(target_md.tables))}"
            )

    maps = []
    for target in target_md.sorted_tables:
        if target.name in queues:
            continue
        block = blocks.get(target.name, TableCopy(target.name, target.name))
        maps.append(_table_map(context, source_md, target, block))
    return maps


def map_of_total(context: Context, maps: list[TableMap], spec: str) -> ColumnMap:
    """The service column that a `totals` entry (monolith table.column) is in."""
    table, _, column = spec.partition(".")
    for mapped in maps:
        if mapped.source.name == table:
            found = mapped.column_from(column)
            if found is not None:
                return found

    raise ManifestError(
        f"context {context.name}: total {spec!r} is copied to no service column; "
        "a total names a monolith column that a copy fills"
    )


def _table_map(
    context: Context, source_md: sa.MetaData, target: sa.Table, block: TableCopy
) -> TableMap:
    where = f"context {context.name}: service table {target.name}"
    if block.source not in context.tables or block.source not in source_md.tables:
        raise ManifestError(
            f"{where} is filled from {block.source!r}, which is not one of "
            f"{context.name}'s tables in the monolith "
            f"({', '.join(t for t in context.tables if t in source_md.tables)})"
        )

    source = source_md.tables[block.source]
    declared = {c.column: c for c in block.columns}
    for name in declared:
        if name not in target.c:
            raise ManifestError(
                f"{where} has no column {name!r} to copy into; its columns are "
                f"{', '.join(target.c.keys())}"
            )

    columns = []
    for column in target.columns:
        spec = declared.get(column.name)
        if spec is None and column.name in source.c:
            spec = ColumnCopy(column.name, column.name)
        if spec is None:
            if _filled_by_database(column):
                continue
            raise ManifestError(
                f"{where}: column {column.name!r} has no source; name a monolith "
                f"column of {source.name}, a converter or a constant for it"
            )
        columns.append(_column_map(where, source, spec))

    key = block.key or tuple(c.name for c in target.primary_key.columns)
    return TableMap(source, target, tuple(columns), _key(where, target, key, columns))


def _column_map(where: str, source: sa.Table, spec: ColumnCopy) -> ColumnMap:
    if spec.source is None:
        return ColumnMap(spec.column, None, constant=spec.constant)

    if spec.source not in source.c:
        raise ManifestError(
            f"{where}: column {spec.column!r} comes from {source.name}."
            f"{spec.source}, which does not exist; {source.name} has "
            f"{', '.join(source.c.keys())}"
        )

    converter = CONVERTERS[spec.convert] if spec.convert else None
    return ColumnMap(spec.column, spec.source, converter)


def _key(
    where: str, target: sa.Table, key: tuple[str, ...], columns: list[ColumnMap]
) -> tuple[tuple[str, str], ...]:
    by_target = {c.target: c for c in columns}
    pairs = []
    for name in key:
        column = by_target.get(name)
        if column is None or column.source is None or column.converter is not None:
            raise ManifestError(
                f"{where}: key column {name!r} must come from a monolith column "
                "as it is (renamed at most), so that both sides order it alike"
            )
        pairs.append((name, column.source))

    unique = {tuple(c.name for c in target.primary_key.columns)} | {
        tuple(c.name for c in constraint.columns)
        for constraint in target.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    }
    unique |= {
        tuple(c.name for c in index.columns) for index in target.indexes if index.unique
    }
    if not pairs or tuple(key) not in unique:
        raise ManifestError(
            f"{where}: key {list(key)} is neither its primary key nor unique; "
            "a key must tell rows apart"
        )

    return tuple(pairs)


def _filled_by_database(column: sa.Column) -> bool:
    autoincrement = column.primary_key and column.autoincrement is True
    return (
        column.nullable is True
        or column.default is not None
        or column.server_default is not None
        or autoincrement
    )
