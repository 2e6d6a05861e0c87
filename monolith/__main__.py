"""Serve the monolith: `python -m monolith --database URL --port N`.

Standing alone it runs the contexts' side effects in-process, after each
commit; `--side-effects functions` leaves them to the Lambda functions that
`migrate up` runs beside it.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading

from waitress import serve

from migrate.observe import setup_process
from monolith.host import Monolith
from monolith.web import create_app

log = logging.getLogger("monolith")

CATCH_UP_SECONDS = 2.0
IN_PROCESS = "in-process"
AS_FUNCTIONS = "functions"
# Open connections the monolith serves at once (waitress's default is 100).
CONNECTIONS = 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m monolith")
    parser.add_argument("--database", required=True, help="SQLAlchemy URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--side-effects", choices=(IN_PROCESS, AS_FUNCTIONS), default=IN_PROCESS,
        help="run the contexts' side effects here after each commit (the "
             "default), or leave them to their Lambda functions, as `migrate up` "
             "does; results land in MAIL_DIR (default ./mail) or OUTPUT_BUCKET")
    args = parser.parse_args()
    setup_process("monolith")

    host = Monolith(
        args.database,
        side_effects=args.side_effects == IN_PROCESS,
        router_url=os.environ.get("MIGRATE_ROUTER_URL"),
    )
    threading.Thread(target=_catch_up_forever, args=(host,), daemon=True).start()
    log.info("monolith serving on %s:%s", args.host, args.port)
    serve(
        create_app(host),
        host=args.host,
        port=args.port,
        threads=args.threads,
        # A router in front keeps up to 512 connections to the monolith
        # alive; past waitress's default of 100 it would stop accepting,
        # and a burst of reads falling back from a dead service would wait
        # in the listen queue until they timed out. poll(), because select()
        # cannot watch descriptors past 1024.
        connection_limit=CONNECTIONS,
        asyncore_use_poll=True,
        ident="monolith",
        _quiet=True,
    )


def _catch_up_forever(host: Monolith) -> None:
    """Finish dispatches that a crash or a consumer's failure interrupted."""
    stop = threading.Event()
    while not stop.wait(CATCH_UP_SECONDS):
        try:
            delivered = host.catch_up()
        except Exception:
            log.exception("catch-up failed; trying again in %ss", CATCH_UP_SECONDS)
            continue
        if delivered:
            log.info("caught up %s events", delivered)


if __name__ == "__main__":
    main()
