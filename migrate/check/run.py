"""`migrate check`: the code edges and the data edges, in one report.

`check()` loads the manifest (a malformed one raises `ManifestError`), lays
out the package root, checks the imports, then the tables, and applies the
baseline when one is given. It returns the report; the command turns it into
an exit code: 0 clean, 1 violations, 2 the check could not run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from migrate.check.code import CodeResult, check_code
from migrate.check.data import Description, check_data
from migrate.check.layout import Layout
from migrate.check.report import Report, apply_baseline, read_baseline
from migrate.manifest import load

BASELINE_NAME = "check-baseline.json"


def check(
    manifest_path: Path | None = None,
    root: Path | None = None,
    baseline: Path | None = None,
) -> Report:
    started = time.perf_counter()
    layout = Layout(load(manifest_path), root)
    report, _, _ = inspect(layout)
    report.seconds = time.perf_counter() - started
    entries = read_baseline(baseline) if baseline is not None else []
    return apply_baseline(report, entries) if entries else report


def inspect(
    layout: Layout, *, plan: bool = False
) -> tuple[Report, CodeResult, dict[str, Any]]:
    """Every violation before any baseline, what the code check saw, and the
    contexts' description (with routes and events when `plan` asks)."""
    description = Description(layout, plan=plan)
    try:
        code = check_code(layout)
    except BaseException:
        description.cancel()
        raise

    violations = list(code.violations)
    notes = list(code.notes)
    tables = 0
    described: dict[str, Any] = {"contexts": {}, "relationships": []}
    if any(v.rule in ("syntax-error", "unreadable") for v in violations):
        description.cancel()
        notes.append("Data edges were not checked: the tables' modules are "
                     "imported to read them, and a module does not parse or "
                     "cannot be read.")
    else:
        described = description.result()
        data, tables = check_data(layout, described)
        violations.extend(data)
    report = Report(violations, modules=code.modules, tables=tables, notes=notes)
    return report, code, described


def default_baseline(manifest_path: Path | None) -> Path:
    """Where the baseline lives unless told: beside the manifest."""
    return (manifest_path or load().path).resolve().parent / BASELINE_NAME
