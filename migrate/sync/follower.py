"""The monolith following a context whose writer is now its service.

After a write flip the service publishes the context's changes; this process
applies them to the monolith's own copy of the context's tables, through the
context's replica module or its declared aggregates (see
`migrate.hosts.replica`), claiming each event id in the context's inbox, so
a redelivered or republished event changes nothing and the monolith stays a
complete replica to roll back to.

    python -m migrate.sync.follower --context billing --database URL \
        --queue-url URL [--endpoint URL]

Its metrics (messages handled and failed, handler time) are served for
Prometheus on a free loopback port when `MIGRATE_METRICS_DIR` says where
to record it (see `migrate.observe.metrics`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from migrate.hosts.replica import replica_of
from migrate.manifest import load as load_manifest
from migrate.messaging.clients import sqs_client
from migrate.messaging.consumer import consume
from migrate.messaging.message import ReceivedMessage
from migrate.observe import metrics, setup_process

if TYPE_CHECKING:
    from monolith.host import Monolith

log = logging.getLogger(__name__)


def follower(host: Monolith, context: str) -> Callable[[ReceivedMessage], None]:
    replica = replica_of(host.manifest.context(context))

    def apply(message: ReceivedMessage) -> None:
        envelope = message.envelope
        uow = host.unit_of_work(
            context, command=False, claim=(f"{context}.replica", envelope.event_id)
        )
        if replica(envelope, uow):
            log.info(
                "applied %s %s of %s %s",
                envelope.origin,
                envelope.event_type,
                context,
                envelope.aggregate_id,
            )

    return apply


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m migrate.sync.follower")
    parser.add_argument("--context", required=True)
    parser.add_argument(
        "--database", required=True, help="the monolith's SQLAlchemy URL"
    )
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--endpoint", help="SQS endpoint URL (the emulator)")
    args = parser.parse_args()
    name = setup_process(f"{args.context}-follower", context=args.context)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    manifest = load_manifest()
    host = manifest.host_class()(args.database, manifest)
    metrics.serve(name)
    consume(
        sqs_client(args.endpoint), args.queue_url, follower(host, args.context), stop
    )


if __name__ == "__main__":
    main()
