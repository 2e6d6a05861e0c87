"""Schemas through Alembic: the monolith's, and each extracted service's.

A monolith's Alembic environment calls `run_monolith_migrations`: its
target is every context's metadata in the manifest, beside the kit's own
tables. `upgrade` migrates a monolith's database with the migrations its
manifest names, or a service's with the folder given.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config


def alembic_config(
    database_url: str, script_location: Path, manifest_path: Path | None = None
) -> Config:
    """A configuration whose environment reads `manifest_path` (as
    `config.attributes["manifest_path"]`; None means the default manifest)."""
    # Alembic prints what it does; the kit reports for itself.
    config = Config(stdout=io.StringIO(), cmd_opts=argparse.Namespace(quiet=True))
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["manifest_path"] = manifest_path
    return config


def upgrade(
    database_url: str,
    script_location: Path | None = None,
    manifest_path: Path | None = None,
) -> None:
    """Migrate to the newest revision; without `script_location`, with the
    monolith's migrations that the manifest names."""
    if script_location is None:
        from migrate.manifest import load

        script_location = load(manifest_path).migrations
    command.upgrade(
        alembic_config(database_url, script_location, manifest_path), "head"
    )


def run_monolith_migrations(alembic_context: Any) -> None:
    """The body of a monolith's Alembic `env.py`."""
    from migrate.kernel.sql import HOSTING_METADATA, create_engine
    from migrate.manifest import load

    manifest = load(alembic_context.config.attributes.get("manifest_path"))
    target = [HOSTING_METADATA] + [
        c.load(c.metadata) for c in manifest.contexts.values()
    ]
    url = alembic_context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("alembic: sqlalchemy.url is not set")

    if alembic_context.is_offline_mode():
        alembic_context.configure(url=url, target_metadata=target, literal_binds=True)
        with alembic_context.begin_transaction():
            alembic_context.run_migrations()
        return

    engine = create_engine(url)
    with engine.connect() as connection:
        alembic_context.configure(
            connection=connection, target_metadata=target, render_as_batch=True
        )
        with alembic_context.begin_transaction():
            alembic_context.run_migrations()
    engine.dispose()
