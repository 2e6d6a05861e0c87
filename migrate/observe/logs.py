"""Logs as JSON lines, one object per line, for every process of the system.

Each line carries `time` (ISO 8601, UTC, milliseconds), `level`, `service`
(the process: `router`, `monolith`, `billing-service` ...), `logger` and
`message`, and where known `context`, `trace_id`, `route` and `backend`;
an exception adds `error` with its traceback. Fields passed with
`extra={...}` are kept as they are. CloudWatch Logs Insights discovers the
fields of JSON lines by itself, so a line is queryable as written:

    fields time, service, level, message
    | filter trace_id = "1-67a1b2c3-..." and level = "ERROR"

What a request handler knows about the request (its route, its backend)
is set with `bind(...)` for the duration of the request; the trace id comes
from the current X-Ray segment.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from migrate.observe import tracing

# Attributes every LogRecord has; anything else came from `extra=`.
_STANDARD = frozenset(
    set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
)
# Third parties whose INFO and WARNING lines are chatter here: the X-Ray SDK
# says it patched each module, and warns on every SQS poll made outside a
# segment (several a second, in every consumer).
_QUIETER = {"aws_xray_sdk": logging.ERROR}
_bound: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "migrate_log_fields", default=None
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def __init__(self, service: str = "", context: str | None = None):
        super().__init__()
        self.service = service or os.environ.get("MIGRATE_PROCESS_NAME", "")
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ).replace("+00:00", "Z"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.context:
            line["context"] = self.context
        trace_id = tracing.current_trace_id()
        if trace_id:
            line["trace_id"] = trace_id
        line.update(_bound.get() or {})
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure(
    service: str, context: str | None = None, level: str | int = "INFO"
) -> None:
    """Send this process's logging to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service, context))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name, least in _QUIETER.items():
        logging.getLogger(name).setLevel(least)


@contextlib.contextmanager
def bind(**fields: str) -> Iterator[None]:
    """Add fields (route, backend ...) to every line logged in this block."""
    token = _bound.set({**(_bound.get() or {}), **fields})
    try:
        yield
    finally:
        _bound.reset(token)
