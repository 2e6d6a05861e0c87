"""Moving a finished context's package beside its service, outside git."""

from __future__ import annotations

import shutil
from pathlib import Path

from migrate.check.run import check
from migrate.extract.finish import relocate
from migrate.extract.generate import generate
from migrate.manifest import load
from migrate.settings import PROJECT_ROOT


def test_outside_a_git_checkout_the_package_is_moved_and_the_tree_rewritten(
    tmp_path: Path,
) -> None:
    shutil.copytree(PROJECT_ROOT / "monolith", tmp_path / "monolith",
                    ignore=shutil.ignore_patterns("__pycache__"))
    manifest = load(tmp_path / "monolith" / "contexts.toml")
    service = generate(manifest, "catalog", tmp_path / "extracted").folder
    source = tmp_path / "monolith" / "catalog"

    moved = relocate(manifest, "catalog", source, service / "catalog")

    entry = load(manifest.path).context("catalog")
    assert not moved.git
    assert not source.exists()
    assert (service / "catalog" / "api.py").is_file()
    assert (entry.package, entry.api, entry.finished) == (
        "catalog", "catalog.api", True
    )
    assert entry.root == service
    assert "from catalog.domain import" in (service / "catalog" / "api.py").read_text()
    assert check(manifest.path).ok
