"""The 2,000-module benchmark, at a small size: it runs, reports its
figures, and the check finds exactly the violations it planted."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from planting import PROJECT

# The full size (2,000 modules) is run by hand; its figure is in docs/check.md.
MODULES = int(os.environ.get("CHECK_BENCH_MODULES", "300"))


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migrate.check.bench", "--modules", str(MODULES),
         *args], cwd=PROJECT, capture_output=True, text=True, timeout=300,
        check=False)


def test_the_bench_reports_its_figures_on_clean_code() -> None:
    done = _bench()

    assert done.returncode == 0, done.stdout + done.stderr
    figures = re.fullmatch(
        r"migrate check: (\d+) modules, (\d+) tables, 0 violations in "
        r"(\d+\.\d\d) s \((.+), (\d+) cores, Python 3\.11\.\d+ on \w+\)",
        done.stdout.strip())
    assert figures is not None, done.stdout
    assert int(figures[1]) == MODULES
    assert int(figures[2]) == 2 * round(MODULES / 100)
    assert float(figures[3]) > 0


def test_the_bench_finds_each_violation_it_planted_where_it_planted_it() -> None:
    done = _bench("--plant", "8")

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert re.match(r"migrate check: \d+ modules, \d+ tables, 8 violations in ",
                    lines[0])
    assert lines[1] == ("planted 8 violations: 8 found where planted, 0 missed, "
                        "0 unexpected")
