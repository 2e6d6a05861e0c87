"""What every process of the system says about itself: traces, logs, metrics.

Each process calls `setup_process` first thing in its entrypoint, before it
opens a database or a queue:

- `tracing`: X-Ray segments, one trace across every hop (off unless
  `MIGRATE_TRACING=on`, which `migrate up` sets);
- `logs`: JSON lines on stderr, with the trace id;
- `metrics`: Prometheus metrics, and CloudWatch embedded metric format
  lines on demand.

The process's name comes from `MIGRATE_PROCESS_NAME` (the supervisor sets
it to the name `migrate up` gave the process) or from the caller.
"""

from __future__ import annotations

import os

from migrate.observe import logs, metrics, tracing


def process_name(default: str) -> str:
    return os.environ.get("MIGRATE_PROCESS_NAME") or default


def setup_process(
    default_name: str, context: str | None = None, level: str = "INFO"
) -> str:
    """Logging, tracing and metrics for this process; returns its name."""
    name = process_name(default_name)
    logs.configure(name, context, level)
    tracing.configure(name)
    metrics.configure(name)
    return name
