"""The monolith's migrations build exactly the tables its contexts declare."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from migrate.kernel.sql import HOSTING_METADATA, create_engine
from migrate.manifest import load
from migrate.schema import upgrade

LIBRARY = Path(__file__).resolve().parents[1] / "second_monolith" / "library" / (
    "contexts.toml"
)


def test_the_migrations_leave_no_drift_from_the_contexts_tables(
    database_url: str,
) -> None:
    upgrade(database_url)
    declared = [HOSTING_METADATA] + [
        context.load(context.metadata) for context in load().contexts.values()
    ]

    with create_engine(database_url).connect() as db:
        drift = compare_metadata(MigrationContext.configure(db), declared)

    assert drift == []


def test_a_second_monolith_migrates_with_the_migrations_its_manifest_names(
    sqlite_url: str,
) -> None:
    manifest = load(LIBRARY)

    upgrade(sqlite_url, manifest_path=LIBRARY)

    declared = [HOSTING_METADATA] + [
        context.load(context.metadata) for context in manifest.contexts.values()
    ]
    with create_engine(sqlite_url).connect() as db:
        drift = compare_metadata(MigrationContext.configure(db), declared)
        tables = set(sa.inspect(db).get_table_names())
    assert drift == []
    assert {"members", "books", "copies", "loans"} <= tables
    assert "orders" not in tables
