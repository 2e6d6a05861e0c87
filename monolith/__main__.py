"""Serve the monolith: `python -m monolith --database URL --port N`."""

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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m monolith")
    parser.add_argument("--database", required=True, help="SQLAlchemy URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    setup_process("monolith")

    host = Monolith(args.database, router_url=os.environ.get("MIGRATE_ROUTER_URL"))
    threading.Thread(target=_catch_up_forever, args=(host,), daemon=True).start()
    log.info("monolith serving on %s:%s", args.host, args.port)
    serve(
        create_app(host),
        host=args.host,
        port=args.port,
        threads=args.threads,
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
