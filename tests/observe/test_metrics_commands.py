"""`migrate metrics targets` when nothing runs: one line, exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def test_targets_of_a_system_that_is_not_running_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "migrate.cli", "metrics", "targets"],
        capture_output=True, text=True, cwd=REPOSITORY, timeout=120,
        env={**os.environ, "MIGRATE_HOME": str(tmp_path / "var")},
    )

    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert str(tmp_path / "var") in done.stderr and "migrate up" in done.stderr
    assert done.stdout == ""
