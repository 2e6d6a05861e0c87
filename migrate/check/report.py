"""Violations, the rules they break, the baseline, and the report.

A violation names its rule, the context it sits in, where it is (file:line,
a table, or an SQL statement) and a message that carries the offending
names. Its `subject` identifies it without line numbers (for example
`monolith.billing.handlers -> monolith.ordering.adapters`), so a baseline
keeps matching while lines move around it.

A baseline is a JSON file of accepted violations (rule, subject). The check
fails only on violations that are not in it, and reports the entries that
match nothing any more: those are stale, and a violation that came back
would pass silently under them, so write the baseline again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from migrate.check.errors import BaselineError

# Every rule the check enforces, with the sentence a report shows for it.
RULES: dict[str, str] = {
    "internal-import": "a context reaches another only through its api and "
    "events modules",
    "host-import": "a context does not know its host",
    "forbidden-import": "a module imports nothing its role forbids",
    "no-context": "every module belongs to a context or to the host",
    "no-role": "every module of a context has a role in the manifest",
    "no-init": "every module lives in a package (a folder with __init__.py) "
    "or is declared a host script",
    "star-import": "no star imports: what they bring in cannot be checked",
    "dynamic-import": "no dynamic import whose module name is not a literal",
    "syntax-error": "every module parses",
    "unreadable": "every module can be read in the encoding it declares",
    "unused-pattern": "every pattern in the manifest can match something: a "
    "module, an import, an installed module",
    "table-owner": "every table belongs to exactly the context that claims it",
    "unclaimed-table": "every table is claimed by a context in the manifest",
    "missing-table": "every claimed table is defined in its context's metadata",
    "cross-context-foreign-key": "no foreign key from one context's table to "
    "another's",
    "cross-context-relationship": "no ORM relationship between two contexts' "
    "tables",
    "sql-foreign-table": "a context's code runs SQL on its own tables only",
    "sql-cross-context": "no SQL statement spans two contexts' tables",
    "sql-unreadable": "every SQL statement parses, so its tables are known",
}

HOST = "host"
NO_CONTEXT = "no context"
MANIFEST = "manifest"


@dataclasses.dataclass(frozen=True)
class Violation:
    rule: str
    context: str
    location: str
    message: str
    subject: str
    other: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.subject)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class BaselineEntry:
    rule: str
    subject: str
    context: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.subject)


@dataclasses.dataclass
class Report:
    violations: list[Violation]
    baselined: list[Violation] = dataclasses.field(default_factory=list)
    stale: list[BaselineEntry] = dataclasses.field(default_factory=list)
    modules: int = 0
    tables: int = 0
    seconds: float = 0.0
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "violations": [v.to_dict() for v in _ordered(self.violations)],
            "baselined": [v.to_dict() for v in _ordered(self.baselined)],
            "stale_baseline": [dataclasses.asdict(e) for e in self.stale],
            "checked": {"modules": self.modules, "tables": self.tables},
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }

    def text(self) -> str:
        lines: list[str] = []
        for context, by_rule in _grouped(self.violations).items():
            lines.append(context)
            for rule, found in by_rule.items():
                lines.append(f"  {rule}: {RULES.get(rule, '')}")
                lines.extend(f"    {v.location}  {v.message}" for v in found)
            lines.append("")
        for entry in self.stale:
            lines.append(
                f"stale baseline entry: {entry.rule} {entry.subject} "
                "(it matches no violation now; write the baseline again)"
            )
        lines.extend(self.notes)
        lines.append(self.summary())
        return "\n".join(lines)

    def summary(self) -> str:
        checked = f"{self.modules} modules and {self.tables} tables"
        accepted = f", {len(self.baselined)} accepted by the baseline" if (
            self.baselined) else ""
        if self.ok:
            return f"No violations in {checked}{accepted} ({self.seconds:.2f} s)."

        contexts = len({v.context for v in self.violations})
        return (
            f"{len(self.violations)} violations in {contexts} contexts, "
            f"checking {checked}{accepted} ({self.seconds:.2f} s)."
        )


def _ordered(violations: Iterable[Violation]) -> list[Violation]:
    """Contexts first, then the host, then the rest; rules in RULES' order."""
    order = list(RULES)
    return sorted(
        violations,
        key=lambda v: (_context_order(v.context), v.context,
                       order.index(v.rule) if v.rule in order else len(order),
                       v.location),
    )


def _grouped(violations: Iterable[Violation]) -> dict[str, dict[str, list[Violation]]]:
    grouped: dict[str, dict[str, list[Violation]]] = {}
    for v in _ordered(violations):
        grouped.setdefault(v.context, {}).setdefault(v.rule, []).append(v)
    return grouped


def _context_order(context: str) -> int:
    return {HOST: 1, NO_CONTEXT: 2, MANIFEST: 3}.get(context, 0)


def read_baseline(path: Path) -> list[BaselineEntry]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(path, "the file does not exist") from None
    except json.JSONDecodeError as error:
        raise BaselineError(path, f"it is not JSON ({error})") from None

    entries = raw.get("violations") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise BaselineError(path, 'it needs {"violations": [...]}')

    found = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not {"rule", "subject"} <= set(entry):
            raise BaselineError(path, f"entry {number} needs a rule and a subject")
        found.append(BaselineEntry(entry["rule"], entry["subject"],
                                   entry.get("context", "")))
    return found


def write_baseline(path: Path, violations: Iterable[Violation]) -> int:
    entries = sorted(
        {(v.rule, v.subject, v.context) for v in violations}
    )
    body = {
        "about": "violations accepted by `migrate check`; it fails only on new ones",
        "violations": [
            {"rule": rule, "subject": subject, "context": context}
            for rule, subject, context in entries
        ],
    }
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return len(entries)


def apply_baseline(report: Report, entries: list[BaselineEntry]) -> Report:
    accepted = {e.key for e in entries}
    new = [v for v in report.violations if v.key not in accepted]
    old = [v for v in report.violations if v.key in accepted]
    matched = {v.key for v in old}
    stale = [e for e in entries if e.key not in matched]
    return dataclasses.replace(report, violations=new, baselined=old, stale=stale)
