"""Every process's log, merged by time and filtered: what `migrate logs` reads.

The supervisor writes each process's output to `<logs>/<process>.log`.
Nearly every line is a JSON object (see `migrate.observe.logs`; a Lambda
handler's lines are Powertools' shape, with `timestamp` and
`xray_trace_id`). A line that is not JSON (a third party's output, a
traceback printed by a dying process) is kept, attributed to its file's
process, and placed in time just before the next JSON line of its file
(or at the file's modification time when none follows), so the lines of
one file keep their order.

A CloudWatch embedded metric format line (a process's metrics, with
`MIGRATE_METRICS_EMF=on`) is a JSON line too, timed by its `_aws`
`Timestamp`.

`LogFolder.read()` returns what was appended since the last call, from
every file, merged by time, so calling it again and again follows the
folder, files that appear later included; a file that shrank (cut or
replaced) is read again from its start. Only complete lines are read: a
line still being written waits for its newline.

Filters: process (the file's name or the line's `service`, shell-style
patterns allowed), least level, trace id, context, text (case-insensitive,
anywhere in the line) and time. Level, trace and context match JSON lines
only: a line that is not JSON has none of them.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from migrate.observe.errors import NoLogs, UnknownProcess

_log = logging.getLogger(__name__)

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclasses.dataclass
class Entry:
    """One line of one process's log."""

    time: float
    process: str
    line: str
    fields: dict[str, Any] | None

    @property
    def level(self) -> str | None:
        if self.fields is None:
            return None
        level = str(self.fields.get("level", "")).upper()
        return _ALIASES.get(level, level) or None

    @property
    def service(self) -> str | None:
        value = self.fields.get("service") if self.fields else None
        return str(value) if value else None

    @property
    def message(self) -> str:
        if self.fields is None:
            return self.line
        return str(self.fields.get("message", ""))

    @property
    def trace_id(self) -> str | None:
        if self.fields is None:
            return None
        value = self.fields.get("trace_id") or self.fields.get("xray_trace_id")
        return str(value) if value else None

    @property
    def context(self) -> str | None:
        value = self.fields.get("context") if self.fields else None
        return str(value) if value else None

    def iso_time(self) -> str:
        return (
            datetime.fromtimestamp(self.time, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )

    def as_dict(self) -> dict[str, Any]:
        if self.fields is None:
            return {"time": self.iso_time(), "process": self.process,
                    "message": self.line, "raw": True}
        return {**self.fields, "process": self.process}


@dataclasses.dataclass(frozen=True)
class Filters:
    services: tuple[str, ...] = ()
    level: str | None = None
    trace_id: str | None = None
    context: str | None = None
    text: str | None = None
    since: float | None = None

    def keep(self, entry: Entry) -> bool:
        if self.since is not None and entry.time < self.since:
            return False
        if self.services and not any(
            _matches(pattern, entry) for pattern in self.services
        ):
            return False
        if self.level is not None:
            level = entry.level
            if level is None or LEVELS.get(level, 0) < LEVELS[self.level]:
                return False
        if self.trace_id is not None and entry.trace_id != self.trace_id:
            return False
        if self.context is not None and entry.context != self.context:
            return False
        return self.text is None or self.text.lower() in entry.line.lower()


def _matches(pattern: str, entry: Entry) -> bool:
    names = [entry.process] + ([entry.service] if entry.service else [])
    return any(fnmatch.fnmatchcase(name, pattern) for name in names)


def parse_since(text: str, now: float | None = None) -> float:
    """`10m`, `2h`, `30s`, `1d` ago, or a time (ISO 8601, UTC unless it
    says otherwise), as epoch seconds; ValueError naming the rule."""
    now = time.time() if now is None else now
    duration = _DURATION.match(text.strip())
    if duration:
        return now - float(duration.group(1)) * _UNITS[duration.group(2)]

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r}: give a time ago such as 30s, 10m, 2h or 1d, or a "
            "time such as 2026-12-04T10:00:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_level(text: str) -> str:
    level = _ALIASES.get(text.upper(), text.upper())
    if level not in LEVELS:
        raise ValueError(
            f"{text!r}: the levels are {', '.join(LEVELS)}"
        )
    return level


def _time_of(fields: dict[str, Any]) -> float | None:
    # An embedded-metric-format line keeps its time, in milliseconds, in
    # the metadata CloudWatch reads.
    aws = fields.get("_aws")
    if isinstance(aws, dict) and isinstance(aws.get("Timestamp"), int | float):
        return float(aws["Timestamp"]) / 1000
    for key in ("time", "timestamp"):
        value = fields.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            # Powertools may write epoch milliseconds.
            return value / 1000 if value > 1e11 else float(value)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace(",", "."))
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    return None


def _parsed(line: str) -> tuple[dict[str, Any] | None, float | None]:
    if not line.startswith("{"):
        return None, None
    try:
        fields = json.loads(line)
    except ValueError:
        return None, None
    if not isinstance(fields, dict):
        return None, None
    return fields, _time_of(fields)


class LogFolder:
    """The log files of one system, read incrementally."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._offsets: dict[Path, int] = {}
        self._latest: dict[Path, float] = {}
        self.known: set[str] = set()

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.log"))

    def read(self) -> list[Entry]:
        """Every complete line appended since the last call, merged by time."""
        entries: list[Entry] = []
        for path in self.files():
            entries += self._read_file(path)
        entries.sort(key=lambda e: e.time)
        return entries

    def _read_file(self, path: Path) -> list[Entry]:
        process = path.stem
        self.known.add(process)
        try:
            size = path.stat().st_size
            modified = path.stat().st_mtime
        except FileNotFoundError:
            self._offsets.pop(path, None)
            return []

        offset = self._offsets.get(path, 0)
        if size < offset:
            _log.debug("%s shrank from %s to %s bytes; reading it again",
                       path, offset, size)
            offset = 0
        if size == offset:
            self._offsets[path] = offset
            return []

        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read(size - offset)
        complete = chunk.rfind(b"\n") + 1
        self._offsets[path] = offset + complete
        entries = self._entries(process, chunk[:complete],
                                max(modified, self._latest.get(path, 0.0)))
        if entries:
            self._latest[path] = entries[-1].time
        return entries

    def _entries(self, process: str, chunk: bytes, modified: float) -> list[Entry]:
        """The chunk's lines; one that is not JSON takes the time of the
        next JSON line, or else `modified` (never earlier than the file's
        latest line)."""
        entries: list[Entry] = []
        waiting: list[Entry] = []
        for raw in chunk.decode("utf-8", errors="replace").splitlines():
            line = raw.rstrip("\r")
            if not line.strip():
                continue

            fields, moment = _parsed(line)
            if fields is None or moment is None:
                waiting.append(Entry(0.0, process, line, fields))
                continue

            for early in waiting:
                early.time = moment
            entries += waiting
            waiting = []
            if fields.get("service"):
                self.known.add(str(fields["service"]))
            entries.append(Entry(moment, process, line, fields))
        latest = entries[-1].time if entries else 0.0
        for late in waiting:
            late.time = max(modified, latest)
        return entries + waiting


def check_services(patterns: Iterable[str], known: Iterable[str]) -> None:
    """Refuse a process name (or pattern) that matches no process."""
    names = sorted(set(known))
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            raise UnknownProcess(pattern, names)


def read(folder: Path, filters: Filters, lines: int | None) -> list[Entry]:
    """The last `lines` entries (all when None) that pass the filters."""
    logs = LogFolder(folder)
    if not logs.files():
        raise NoLogs(folder)

    entries = logs.read()
    check_services(filters.services, logs.known)
    kept = [e for e in entries if filters.keep(e)]
    return kept[-lines:] if lines else kept


def follow(
    folder: Path, filters: Filters, lines: int | None, interval: float = 0.25
) -> Iterator[Entry]:
    """The last `lines` entries, then each new one as it is written, from
    every file of the folder, those that appear later included. Runs until
    the caller stops iterating."""
    logs = LogFolder(folder)
    if not logs.files():
        raise NoLogs(folder)

    entries = logs.read()
    check_services(filters.services, logs.known)
    kept = [e for e in entries if filters.keep(e)]
    yield from (kept[-lines:] if lines else kept)
    while True:
        time.sleep(interval)
        yield from (e for e in logs.read() if filters.keep(e))
