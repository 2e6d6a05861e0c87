"""`python -m migrate.router --state PATH --host 127.0.0.1 --port N`.

Prints one line, `router listening on http://HOST:PORT`, once it accepts
connections (useful with `--port 0`; `--quiet` leaves it to the JSON log,
for a supervisor that checks readiness over HTTP), and runs until SIGINT
or SIGTERM.
The admin API listens on `--admin-host` (127.0.0.1) and `--admin-port`
(a free one by default), with the dashboard at `/dashboard`; its URL and
token are written beside the state file (see `migrate.router.admin`). The
dashboard and the contracts gate read the system's settings from the
environment (`MIGRATE_HOME` and the rest, which `migrate up` passes on).
Runs on uvloop when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sqlite3
import sys

from migrate.errors import ConfigurationError
from migrate.observe import setup_process, tracing
from migrate.router.proxy import MiB, Settings, serve

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


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
        "--admin-host", default="127.0.0.1",
        help="where the admin API listens (default loopback only)",
    )
    parser.add_argument("--admin-port", type=int, default=0,
                        help="the admin API's port; 0 picks a free one")
    parser.add_argument("--no-admin", action="store_true",
                        help="run without the admin API")
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
    traced = tracing.Config.from_env()
    parser.add_argument(
        "--trace", action=argparse.BooleanOptionalAction, default=traced.enabled,
        help="send X-Ray segments of sampled requests to the daemon address "
             "(default: on when MIGRATE_TRACING=on)",
    )
    parser.add_argument("--trace-per-second", type=int,
                        default=traced.per_second,
                        help="requests traced each second before the rate applies "
                             "(default MIGRATE_TRACE_PER_SECOND or 1)")
    parser.add_argument("--trace-rate", type=float, default=traced.rate,
                        help="share of the other requests traced, 0-1 "
                             "(default MIGRATE_TRACE_RATE or 0.05)")
    parser.add_argument("--trace-address", default=traced.address,
                        help="the X-Ray daemon's UDP host:port "
                             "(default AWS_XRAY_DAEMON_ADDRESS or 127.0.0.1:2000)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--quiet", action="store_true",
                        help="print no readiness line on stdout; the log has it")
    return parser.parse_args(argv)


async def _run(arguments: argparse.Namespace) -> None:
    from migrate.router.admin import token_from_env, write_admin_file

    settings = Settings(
        hold_timeout=arguments.hold_timeout,
        upstream_timeout=arguments.upstream_timeout,
        max_body=arguments.max_body,
        tracing=arguments.trace,
        trace_per_second=arguments.trace_per_second,
        trace_rate=arguments.trace_rate,
        trace_address=arguments.trace_address,
    )
    loop = asyncio.get_running_loop()
    started: asyncio.Future[tuple[str, int]] = loop.create_future()
    admin_started: asyncio.Future[tuple[str, int]] = loop.create_future()
    token = token_from_env()
    admin = (
        None if arguments.no_admin
        else (arguments.admin_host, arguments.admin_port, token)
    )
    server = asyncio.create_task(
        serve(arguments.state, arguments.host, arguments.port, settings, started,
              admin, admin_started)
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.cancel)
    # A server that fails to bind ends before it starts; stop waiting then.
    server.add_done_callback(lambda _: started.cancel())

    with contextlib.suppress(asyncio.CancelledError):
        host, port = await started
        if admin is not None:
            admin_host, admin_port = admin_started.result()
            write_admin_file(arguments.state, f"http://{admin_host}:{admin_port}",
                             token)
        if not arguments.quiet:
            print(f"router listening on http://{host}:{port}", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await server


def _event_loop_runner() -> object:
    try:
        import uvloop
    except ImportError:
        return asyncio.run

    return uvloop.run


def main(argv: list[str] | None = None) -> int:
    try:
        arguments = _arguments(argv)
        setup_process("router", level=arguments.log_level)
    except ConfigurationError as error:
        print(f"router: {error}", file=sys.stderr)
        return EXIT_USAGE
    run = _event_loop_runner()
    try:
        run(_run(arguments))  # type: ignore[operator]
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
