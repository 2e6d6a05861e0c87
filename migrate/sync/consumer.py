"""The monolith consuming the events of a context that a service writes now.

While a producer lives in the monolith, its events reach the monolith's
consumers in-process, right after its transaction commits. Once its writes
moved to its service, its events leave through the service's outbox and
never pass through the monolith; this process brings them back: it
consumes one queue (`<app>-<consumer>-monolith-consumes-<producer>`, the
producer's events of the types the consumer handles, from the service's
side only) and hands each to the consumer's handler on the monolith's
database, claiming the event id in the consumer's inbox, so a redelivered
event, or one the monolith also dispatched in-process, is handled once.

A handler that fails leaves its message in the queue: SQS delivers it again,
and after the queue's receive count moves it to the dead-letter queue. A
consumer whose own writes moved to a service is not run here: its service
consumes the event from its own queue, and the message is let go.

    python -m migrate.sync.consumer --context billing --source ordering \
        --database URL --queue-url URL [--endpoint URL]
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from migrate.kernel.uow import HostNotWriter
from migrate.manifest import load as load_manifest
from migrate.messaging.clients import sqs_client
from migrate.messaging.consumer import consume
from migrate.messaging.message import ReceivedMessage
from migrate.observe import setup_process

if TYPE_CHECKING:
    from monolith.host import Monolith

log = logging.getLogger(__name__)


def consumer(
    host: Monolith, context: str, source: str
) -> Callable[[ReceivedMessage], None]:
    def handle(message: ReceivedMessage) -> None:
        envelope = message.envelope
        subscribers = [
            s for s in host.subscribers_of(source, envelope.event_type)
            if s.context == context
        ]
        if not subscribers:
            log.warning(
                "%s consumes no %s.%s; event %s let go",
                context, source, envelope.event_type, envelope.event_id,
            )
            return

        try:
            host.handle(context, envelope)
        except HostNotWriter:
            # The consumer's own service writes it now and consumes the event
            # from its queue.
            log.debug("%s is not written here; %s let go", context,
                      envelope.event_id)
            return

        log.info("%s handled %s %s of %s %s", context, envelope.origin,
                 envelope.event_type, source, envelope.aggregate_id)

    return handle


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m migrate.sync.consumer")
    parser.add_argument("--context", required=True, help="the consuming context")
    parser.add_argument("--source", required=True, help="the producing context")
    parser.add_argument(
        "--database", required=True, help="the monolith's SQLAlchemy URL"
    )
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--endpoint", help="SQS endpoint URL (the emulator)")
    args = parser.parse_args()
    setup_process(f"{args.context}-consumes-{args.source}", context=args.context)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    manifest = load_manifest()
    host = manifest.host_class()(args.database, manifest)
    consume(
        sqs_client(args.endpoint),
        args.queue_url,
        consumer(host, args.context, args.source),
        stop,
    )


if __name__ == "__main__":
    main()
