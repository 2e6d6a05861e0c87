"""Data edges: who owns each table, and what crosses between owners.

From the contexts' SQLAlchemy metadata (read in a child process by
`migrate.check.introspect`): every table a context defines must be claimed
by that context in the manifest, and by no other; every claimed table must
be defined; no foreign key and no ORM relationship may join one context's
table to another's. The kit's own tables (`[check] kit_tables`) belong to
no context and may be defined anywhere.

What runs at run time is the SQL guard's business (`migrate.check.sqlguard`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from migrate.check.errors import CheckError
from migrate.check.layout import Layout
from migrate.check.report import NO_CONTEXT, Violation
from migrate.errors import ManifestError

INTROSPECTION_SECONDS = 120


class IntrospectionFailed(CheckError):
    exit_code = 2


class Description:
    """The contexts' tables (and plan facts), being read in a child process.

    Started before the imports are checked, so that importing the checked
    code runs beside grimp's scan rather than after it.
    """

    def __init__(self, layout: Layout, *, plan: bool = False):
        self.layout = layout
        command = [sys.executable, "-m", "migrate.check.introspect",
                   "--manifest", str(layout.manifest.path.resolve()),
                   "--root", str(layout.root)]
        if plan:
            command.append("--plan")
        self._child = subprocess.Popen(command, cwd=layout.root, text=True,
                                       stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE)

    def result(self) -> dict[str, Any]:
        try:
            stdout, stderr = self._child.communicate(timeout=INTROSPECTION_SECONDS)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise IntrospectionFailed(
                f"importing the contexts' metadata from {self.layout.root} took "
                f"over {INTROSPECTION_SECONDS} s"
            ) from None

        try:
            described: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            last = (stderr.strip().splitlines() or ["no output"])[-1]
            raise IntrospectionFailed(
                f"importing the contexts' metadata from {self.layout.root} "
                f"failed: {last}"
            ) from None

        if "error" in described:
            raise ManifestError(f"{self.layout.manifest.path}: {described['error']}")
        return described

    def cancel(self) -> None:
        self._child.kill()
        self._child.communicate()


def check_data(
    layout: Layout, described: dict[str, Any]
) -> tuple[list[Violation], int]:
    manifest = layout.manifest
    kit = set(manifest.boundaries.kit_tables)
    found: list[Violation] = []
    defined: set[str] = set()
    for name, facts in described["contexts"].items():
        for table in facts["tables"]:
            defined.add(table["name"])
            found.extend(_ownership(layout, name, table, kit))
            found.extend(_foreign_keys(layout, name, table, kit))

    for context in manifest.hosted.values():
        for table in context.tables:
            if table not in defined:
                found.append(Violation(
                    "missing-table", context.name, f"{manifest.path.name}",
                    f"{context.name} claims table {table}, which its metadata "
                    f"{context.metadata} does not define", table,
                ))

    for relationship in described["relationships"]:
        found.extend(_relationship(layout, relationship))
    return found, len(defined)


def _ownership(
    layout: Layout, context: str, table: dict[str, Any], kit: set[str]
) -> list[Violation]:
    name = table["name"]
    owner = layout.manifest.owner_of(name)
    if owner == context or name in kit:
        return []

    location = f"{layout.shown(Path(table['file']))}:{table['line']}"
    if owner is None:
        return [Violation(
            "unclaimed-table", context, location,
            f"table {name} is defined in {context}'s metadata, but no context "
            "claims it in the manifest", name,
        )]
    return [Violation(
        "table-owner", context, location,
        f"table {name} is defined in {context}'s metadata, but {owner} claims it",
        name, owner,
    )]


def _foreign_keys(
    layout: Layout, context: str, table: dict[str, Any], kit: set[str]
) -> list[Violation]:
    found = []
    for key in table["foreign_keys"]:
        target = key["target_table"]
        owner = layout.manifest.owner_of(target)
        if owner == context or target in kit:
            continue

        whose = f"a table of {owner}" if owner else "a table no context claims"
        found.append(Violation(
            "cross-context-foreign-key", context,
            f"{layout.shown(Path(table['file']))}:{key['line']}",
            f"{table['name']}.{key['column']} references {key['target']}, {whose}",
            f"{table['name']}.{key['column']} -> {key['target']}", owner,
        ))
    return found


def _relationship(layout: Layout, relationship: dict[str, Any]) -> list[Violation]:
    owner_of = layout.manifest.owner_of
    source = owner_of(relationship["source_table"])
    target = owner_of(relationship["target_table"])
    if source == target:
        return []

    where = f"{relationship['class']}.{relationship['attribute']}"
    return [Violation(
        "cross-context-relationship", source or NO_CONTEXT,
        f"{layout.shown(Path(relationship['file']))}:{relationship['line']}",
        f"{where} relates {relationship['source_table']} ({source or 'no context'}) "
        f"to {relationship['target_table']} ({target or 'no context'})",
        f"{where} -> {relationship['target_table']}", target,
    )]
