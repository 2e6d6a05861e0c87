"""Schemas through Alembic: the monolith's, and each extracted service's."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from alembic import command
from alembic.config import Config

MONOLITH_MIGRATIONS = Path(__file__).resolve().parent.parent / "monolith" / "migrations"


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
    script_location: Path = MONOLITH_MIGRATIONS,
    manifest_path: Path | None = None,
) -> None:
    command.upgrade(
        alembic_config(database_url, script_location, manifest_path), "head"
    )
