"""`python -m migrate.router --state PATH --host 127.0.0.1 --port N`.

Prints one line, `router listening on http://HOST:PORT`, once it accepts
connections (useful with `--port 0`), and runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sqlite3
import sys

from migrate.router.proxy import MiB, Settings, serve

EXIT_OK = 0
EXIT_FAILED = 1


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m migrate.router",
        description="Route HTTP requests between the monolith and its services.",
    )
    parser.add_argument("--state", required=True, help="the router's state file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free one")
    parser.add_argument(
        "--hold-timeout", type=float, default=defaults.hold_timeout,
        help="seconds a write waits while its context's writes are held",
    )
    parser.add_argument(
        "--upstream-timeout", type=float, default=defaults.upstream_timeout,
        help="seconds to connect to a backend, and between its reads",
    )
    parser.add_argument(
        "--max-body", type=int, default=defaults.max_body,
        help=f"largest request body in bytes (default {defaults.max_body // MiB} MiB)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def _run(arguments: argparse.Namespace) -> None:
    settings = Settings(
        hold_timeout=arguments.hold_timeout,
        upstream_timeout=arguments.upstream_timeout,
        max_body=arguments.max_body,
    )
    loop = asyncio.get_running_loop()
    started: asyncio.Future[tuple[str, int]] = loop.create_future()
    server = asyncio.create_task(
        serve(arguments.state, arguments.host, arguments.port, settings, started)
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.cancel)
    # A server that fails to bind ends before it starts; stop waiting then.
    server.add_done_callback(lambda _: started.cancel())

    with contextlib.suppress(asyncio.CancelledError):
        host, port = await started
        print(f"router listening on http://{host}:{port}", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await server


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    logging.basicConfig(
        level=arguments.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(_run(arguments))
    except sqlite3.Error as error:
        print(f"router: cannot read the state file {arguments.state}: {error}",
              file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        print(f"router: cannot start: {error}", file=sys.stderr)
        return EXIT_FAILED

    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
