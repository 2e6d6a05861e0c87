"""`nameko run`, writing JSON lines from its first line on.

    python -m migrate.hosts.nameko_run --config config.yaml MODULE

`nameko run` sets up logging from its configuration's `LOGGING` (the
generated `config.yaml` formats every record with
`migrate.observe.logs.JsonFormatter`), but only once it has read that
file; what comes out before, such as the deprecation warning eventlet
issues when nameko imports it, would be plain text. This sets up the
kit's JSON logging first, sends Python's warnings through it, then hands
the arguments, unchanged, to nameko's own `run` command.
"""

from __future__ import annotations

import logging
import sys

from migrate.observe import logs, process_name


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    logs.configure(process_name("service"))
    logging.captureWarnings(True)

    from nameko.cli.main import main as nameko

    sys.argv = ["nameko", "run", *arguments]
    nameko()


if __name__ == "__main__":
    main()
