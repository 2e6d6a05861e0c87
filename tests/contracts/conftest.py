"""Fixtures of the contract tests: an extracted billing service, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.settings import Settings


@pytest.fixture(scope="session")
def extracted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`migrate extract billing`'s generated folder, as a fresh extraction
    writes it (no database or backfill is needed to verify it)."""
    from migrate.extract.generate import generate
    from migrate.manifest import load

    folder = tmp_path_factory.mktemp("extracted")
    generate(load(), "billing", folder)
    return folder


@pytest.fixture
def settings(tmp_path: Path, extracted_dir: Path) -> Settings:
    return Settings.from_env({"MIGRATE_HOME": str(tmp_path / "var"),
                              "MIGRATE_EXTRACTED": str(extracted_dir)})
