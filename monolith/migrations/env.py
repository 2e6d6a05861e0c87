"""Alembic environment of the monolith's one database (every context's tables)."""

from alembic import context

from migrate.schema import run_monolith_migrations

run_monolith_migrations(context)
