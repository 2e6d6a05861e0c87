"""The type hints of the kit and the monolith hold: mypy checks them."""

from __future__ import annotations

import subprocess
import sys

from migrate.settings import PROJECT_ROOT


def test_mypy_finds_no_error_in_the_kit_or_the_monolith() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "migrate", "monolith"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )

    assert checked.returncode == 0, checked.stdout[-3000:]
