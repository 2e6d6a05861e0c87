"""The last parity check of each context's copy, kept for whoever asks later.

`migrate extract`, `migrate backfill` and `migrate verify` compare the
service's copy with the monolith's tables; each writes what it found to
`<MIGRATE_HOME>/parity/<context>.json`, replacing the one before, so the
dashboard (and a gate) can say "in parity as of 10:02" without running a
comparison of its own. The record is what was true when it was written:
it says nothing about changes since, and no record means "unknown"; a
record that cannot be read is an error, so no gate passes on it.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from migrate.errors import ParityError, UnreadableParityRecord
from migrate.manifest import Context
from migrate.settings import Settings
from migrate.sync.backfill import Parity, parity


@dataclasses.dataclass(frozen=True)
class ParityRecord:
    context: str
    checked_at: str
    by: str
    differences: tuple[str, ...]
    counts: dict[str, tuple[int, int]]

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}


def parity_path(settings: Settings, context: str) -> Path:
    return settings.home / "parity" / f"{context}.json"


def record_parity(
    settings: Settings, context: str, found: Parity, by: str
) -> ParityRecord:
    """Keep what a comparison found; `by` names the command that ran it."""
    record = ParityRecord(
        context,
        datetime.now(UTC).isoformat(timespec="seconds"),
        by,
        tuple(found.differences),
        {table: (source, copy) for table, (source, copy) in found.counts.items()},
    )
    path = parity_path(settings, context)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".json.tmp")
    staged.write_text(json.dumps(record.as_json(), indent=2))
    staged.replace(path)
    return record


def verify_and_record(
    settings: Settings, context: Context, source: Engine, target: Engine, by: str
) -> Parity:
    """Compare the copy with its source and keep the result; ParityError
    (after keeping it) when they differ."""
    found = parity(context, source, target)
    record_parity(settings, context.name, found, by)
    if found.differences:
        raise ParityError(
            f"{context.name}'s copy differs from the monolith: "
            + "; ".join(found.differences)
        )

    return found


def last_parity(settings: Settings, context: str) -> ParityRecord | None:
    """The latest record, or None if no comparison was ever kept;
    UnreadableParityRecord when one was kept and cannot be read, which is
    not the same as none: a gate must not take it for a pass."""
    path = parity_path(settings, context)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UnreadableParityRecord(context, path, str(error)) from None
    except ValueError as error:
        raise UnreadableParityRecord(context, path, f"not JSON: {error}") from None

    try:
        return ParityRecord(
            str(data["context"]),
            str(data["checked_at"]),
            str(data["by"]),
            tuple(str(d) for d in data["differences"]),
            {str(t): (int(p[0]), int(p[1])) for t, p in data["counts"].items()},
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise UnreadableParityRecord(
            context, path, f"not a parity record ({type(error).__name__}: {error})"
        ) from None
