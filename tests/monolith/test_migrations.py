"""The monolith's migrations build exactly the tables its contexts declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from migrate.kernel.sql import HOSTING_METADATA, create_engine
from migrate.manifest import load
from migrate.schema import upgrade


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
