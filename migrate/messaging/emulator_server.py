"""moto's SNS/SQS server, writing JSON lines like every process of the system.

    python -m migrate.messaging.emulator_server --host 127.0.0.1 --port N

Serves what `python -m moto.server` serves, through moto's own WSGI
application and request handler, with two differences. What it logs goes
through `migrate.observe.logs`: one JSON object a line, `service`
"emulator". And a request is logged at DEBUG unless it failed (a 4xx at
WARNING, a 5xx at ERROR), with its `method`, `path`, `status` and, for
SQS's JSON protocol, `action` (the `X-Amz-Target` header): the system's
pollers call it several times a second, and a line each would bury
everything else. `--log-level DEBUG` shows them all.

It stops on SIGTERM or SIGINT, finishing the requests in flight. What it
does not do: keep anything (moto holds state in memory only).

One repair to moto 5.2: for every message it hands out, ReceiveMessage
checks the queue's retention period by computing all of the queue's
attributes, three of which count its messages, so a receive cost grew
with the square of the queue's depth: a queue that fell a few hundred
messages behind never caught up again. The check here reads the retention
period alone; what it decides is unchanged.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from migrate.observe import logs, process_name

_log = logging.getLogger("migrate.emulator")


def _request_handler() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class RequestLog(MotoRequestHandler):  # type: ignore[misc, valid-type]
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            status = int(code) if str(code).isdigit() else 0
            level = (
                logging.ERROR if status >= 500
                else logging.WARNING if status >= 400
                else logging.DEBUG
            )
            action = self.headers.get("X-Amz-Target", "") if self.headers else ""
            _log.log(
                level, "%s %s %s", self.command, self.path, code,
                extra={"method": self.command, "path": self.path,
                       "status": status, "action": action},
            )

        def log_error(self, format: str, *args: Any) -> None:
            _log.error(format, *args)

        def log_message(self, format: str, *args: Any) -> None:
            _log.info(format, *args)

    return RequestLog


def _receive_in_linear_time() -> None:
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m migrate.messaging.emulator_server",
        description="moto's SNS/SQS server, logging JSON lines.",
    )
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--log-level", default="INFO")
    arguments = parser.parse_args(argv)
    logs.configure(process_name("emulator"), level=arguments.log_level)
    # moto builds some URLs from it, as its own entry point arranges.
    os.environ.setdefault("MOTO_PORT", str(arguments.port))

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    _receive_in_linear_time()
    try:
        server = make_server(
            arguments.host,
            arguments.port,
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=_request_handler(),
        )
    except OSError as error:
        _log.error("cannot listen on %s:%s: %s", arguments.host, arguments.port,
                   error)
        return 1

    def stop(*_: object) -> None:
        # shutdown() waits for serve_forever, so it cannot run on its thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    _log.info("emulator listening on http://%s:%s", arguments.host,
              server.server_port)
    server.serve_forever()
    _log.info("emulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
