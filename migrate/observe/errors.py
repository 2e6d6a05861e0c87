"""Every failure the observability commands raise, drawn once.

    ObserveError            a user-fixable problem reading traces or logs
    ├── NoTraceStore        no collector store yet (or not one)
    ├── TraceIdInvalid      a trace id that is not X-Ray's shape
    ├── UnknownTrace        a trace id the store does not hold
    ├── NoLogs              no log files yet
    └── UnknownProcess      a process name that no log file belongs to
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from migrate.errors import MigrateError


class ObserveError(MigrateError):
    """Root of the observability commands' errors."""


class NoTraceStore(ObserveError):
    def __init__(self, path: Path, reason: str = ""):
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"no traces at {path}{why}: the collector keeps them once `migrate up` "
            "has started the system with tracing on"
        )
        self.path = path


class TraceIdInvalid(ObserveError):
    def __init__(self, trace_id: str):
        super().__init__(
            f"{trace_id!r} is not a trace id; X-Ray's look like "
            "1-5f84c7a1-0123456789abcdef01234567"
        )
        self.trace_id = trace_id


class UnknownTrace(ObserveError):
    def __init__(self, trace_id: str):
        super().__init__(
            f"no trace {trace_id} in the store; `migrate traces` lists the "
            "recent ones"
        )
        self.trace_id = trace_id


class NoLogs(ObserveError):
    def __init__(self, folder: Path):
        super().__init__(
            f"no logs in {folder}: every process writes its own there once "
            "`migrate up` has started it"
        )
        self.folder = folder


class UnknownProcess(ObserveError):
    def __init__(self, name: str, known: Iterable[str]):
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"no process {name!r} writes logs here; the processes are {listed}"
        )
        self.name = name
