"""A copy of the reference monolith to plant violations in, and ways to check it."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from migrate.check.commands import check_command

PROJECT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Checked:
    exit_code: int
    report: dict[str, Any]

    def found(self, rule: str) -> list[dict[str, Any]]:
        return [v for v in self.report["violations"] if v["rule"] == rule]


@dataclasses.dataclass
class MonolithCopy:
    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "monolith" / "contexts.toml"

    def path(self, relative: str) -> Path:
        return self.root / "monolith" / relative

    def write(self, relative: str, text: str) -> None:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def append(self, relative: str, text: str) -> int:
        """Add lines at the end of a module; the number of the first one."""
        target = self.path(relative)
        lines = target.read_text(encoding="utf-8").splitlines()
        target.write_text("\n".join([*lines, *text.splitlines()]) + "\n",
                          encoding="utf-8")
        return len(lines) + 1

    def replace(self, relative: str, old: str, new: str) -> int:
        """Replace text once; the line number where the new text starts."""
        target = self.path(relative)
        text = target.read_text(encoding="utf-8")
        assert old in text, f"{old!r} is not in {relative}"
        target.write_text(text.replace(old, new, 1), encoding="utf-8")
        return text[: text.index(old)].count("\n") + 1

    def check(self, *args: str) -> Checked:
        result = CliRunner().invoke(
            check_command, ["--manifest", str(self.manifest), "--json", *args]
        )
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Checked(result.exit_code, json.loads(result.output))


def copy_monolith(tmp_path: Path) -> MonolithCopy:
    shutil.copytree(PROJECT / "monolith", tmp_path / "monolith",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return MonolithCopy(tmp_path)


def migrate_cli(*args: str, cwd: Path = PROJECT,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `migrate` command in a process of its own, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "migrate.cli", *args], cwd=cwd, capture_output=True,
        text=True, timeout=120, env={**os.environ, **(env or {})}, check=False,
    )
