"""The README's quick start, run the way a new user runs it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from migrate.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def test_the_readme_shows_exactly_two_commands() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]

    commands = re.findall(r"^    (make \w+)", quick_start, re.MULTILINE)

    assert commands == ["make demo", "make test"]


def test_make_demo_migrates_billing_with_no_failed_request(
    workspace: dict[str, str], tmp_path: Path
) -> None:
    env = {**workspace, "MIGRATE_DEMO_SECONDS": "2"}

    demo = subprocess.run(
        ["make", "demo"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert re.search(r"failed requests\s+0\n", demo.stdout)
    assert re.search(r"invoices\s+monolith (\d+), service \1\n", demo.stdout)
    assert "e-mails sent" in demo.stdout
