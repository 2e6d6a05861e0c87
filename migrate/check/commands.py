"""`migrate check` and `migrate plan`: thin commands over `migrate.check`.

Exit codes of `migrate check`: 0 no violations (beyond the baseline's);
1 violations; 2 the check could not run (a malformed manifest, an unreadable
baseline, metadata that does not import), with one `error:` line naming the
entry. `migrate plan` exits 1 when violations block the extraction.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

_MANIFEST = click.option(
    "--manifest", type=click.Path(path_type=Path, dir_okay=False),
    help="the context manifest (default: the monolith's contexts.toml); its "
         "packages are found beside it or one folder up")
_ROOT = click.option(
    "--root", type=click.Path(path_type=Path, file_okay=False),
    help="the folder that holds the top-level package, if not beside the manifest")


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2))


@click.command("check")
@_MANIFEST
@_ROOT
@click.option("--baseline", type=click.Path(path_type=Path, dir_okay=False),
              help="accepted violations (default: check-baseline.json beside the "
                   "manifest, when it exists)")
@click.option("--write-baseline", is_flag=True,
              help="accept every current violation: write them to the baseline")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def check_command(manifest: Path | None, root: Path | None, baseline: Path | None,
                  write_baseline: bool, as_json: bool) -> None:
    """Prove the contexts' edges hold, in the imports and in the tables.

    Exit 0 when clean, 1 on violations, 2 when the check cannot run (a
    malformed manifest, an unreadable baseline)."""
    from migrate.check.report import write_baseline as write
    from migrate.check.run import check, default_baseline

    target = baseline or default_baseline(manifest)
    if write_baseline:
        report = check(manifest, root)
        count = write(target, report.violations)
        if as_json:
            _echo_json({"baseline": str(target), "accepted": count})
        else:
            click.echo(f"Wrote {count} accepted violations to {target}.")
        return

    if baseline is None and not target.exists():
        target = None  # type: ignore[assignment]
    report = check(manifest, root, target)
    if as_json:
        _echo_json(report.to_dict())
    else:
        click.echo(report.text())
    if not report.ok:
        sys.exit(1)


@click.command("plan")
@click.argument("context")
@_MANIFEST
@_ROOT
@click.option("--database", help="where to count rows (default: the monolith's "
                                 "database from MONOLITH_DATABASE_URL)")
@click.option("--json", "as_json", is_flag=True, help="print the plan as JSON")
def plan_command(context: str, manifest: Path | None, root: Path | None,
                 database: str | None, as_json: bool) -> None:
    """Show what extracting CONTEXT will cut, and what blocks it."""
    from migrate.check.plan import plan
    from migrate.settings import Settings

    found = plan(context, manifest, root, database or Settings.from_env().monolith_url)
    if as_json:
        _echo_json(found.to_dict())
    else:
        click.echo(found.text())
    if not found.ready:
        sys.exit(1)


commands = [check_command, plan_command]
