"""Alembic environment of the library's one database (every context's tables)."""

from alembic import context

from migrate.schema import run_monolith_migrations

run_monolith_migrations(context)
