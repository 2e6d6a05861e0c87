"""The system exporter: what no single process of the system sees.

`migrate up` starts it beside the other processes. When Prometheus scrapes
it, it reads, for the system its environment describes (the same settings
as `migrate up`: MIGRATE_HOME, MIGRATE_EXTRACTED, the database URLs,
AWS_ENDPOINT_URL):

- every queue of the topology (extracted contexts included, as they are
  now): messages visible and in flight, and its dead-letter queue's depth;
- every outbox's backlog: each context's in the monolith's database, and
  each extracted context's in its service's database;
- sync lag per extracted context and direction, in events and in seconds
  (see `migrate.sync.lag`).

A reading that fails (a queue not created yet, a database not migrated)
is left out of that scrape and counted in `migrate_exporter_errors_total`;
the others are still reported. It reads nothing between scrapes.

    python -m migrate.observe.exporter

Its metrics are served on a free loopback port recorded in
`<MIGRATE_METRICS_DIR>/exporter.metrics` (see `migrate.observe.metrics`).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator

from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client.core import Metric
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from migrate.errors import MigrateError
from migrate.kernel.sql import create_engine
from migrate.messaging.clients import sqs_client
from migrate.observe import metrics, readings, setup_process
from migrate.settings import Settings
from migrate.sync.lag import lags
from migrate.system import System, topology

_log = logging.getLogger(__name__)

_FAILURES = (BotoCoreError, ClientError, SQLAlchemyError, MigrateError, OSError)


class SystemReadings:
    """The collector: one reading of the whole system per scrape."""

    def __init__(self, settings: Settings):
        self.system = System(settings)
        self.settings = settings
        self._sqs = sqs_client(settings.endpoint_url)
        self._urls: dict[str, str] = {}
        self._engines: dict[str, Engine] = {}

    def engine(self, url: str) -> Engine:
        found = self._engines.get(url)
        if found is None:
            found = self._engines[url] = create_engine(url)
        return found

    def collect(self) -> Iterator[Metric]:
        family = metrics.family
        failed = metrics.process("migrate_exporter_errors_total")
        extracted = [e.context for e in self.system.extractions()]

        visible = family("migrate_queue_visible_messages")
        in_flight = family("migrate_queue_in_flight_messages")
        dead = family("migrate_queue_dead_letter_messages")
        for queue in topology(self.system.manifest, extracted).queues:
            try:
                depth = readings.queue_depth(self._sqs, self._url(queue.aws_name))
                letters = readings.queue_depth(
                    self._sqs, self._url(queue.dead_letter_aws_name)
                )
            except _FAILURES as error:
                failed.labels("queues").inc()
                _log.warning("cannot read queue %s: %s", queue.name, error)
                continue
            visible.add_metric([queue.name], depth.visible)
            in_flight.add_metric([queue.name], depth.in_flight)
            dead.add_metric([queue.name], letters.visible + letters.in_flight)
        yield from (visible, in_flight, dead)

        backlog = family("migrate_outbox_backlog_events")
        databases = {"monolith": (self.settings.monolith_url,
                                  list(self.system.manifest.contexts))}
        for name in extracted:
            databases[name] = (self.settings.service_url(name), [name])
        for database, (url, contexts) in databases.items():
            try:
                counts = readings.outbox_backlog(self.engine(url), contexts)
            except _FAILURES as error:
                failed.labels("outboxes").inc()
                _log.warning("cannot read the outboxes of %s: %s", database, error)
                continue
            for context, count in counts.items():
                backlog.add_metric([database, context], count)
        yield backlog

        events = family("migrate_sync_lag_events")
        seconds = family("migrate_sync_lag_seconds")
        for name in extracted:
            try:
                found = lags(
                    name,
                    self.engine(self.settings.monolith_url),
                    self.engine(self.settings.service_url(name)),
                )
            except _FAILURES as error:
                failed.labels("sync").inc()
                _log.warning("cannot read the sync lag of %s: %s", name, error)
                continue
            for direction, lag in found.items():
                events.add_metric([name, direction], lag.events)
                seconds.add_metric([name, direction], lag.seconds)
        yield from (events, seconds)

    def _url(self, name: str) -> str:
        found = self._urls.get(name)
        if found is None:
            found = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
            self._urls[name] = found
        return found


def main() -> int:
    name = setup_process("exporter")
    try:
        settings = Settings.from_env()
    except MigrateError as error:
        print(f"exporter: {error}", file=sys.stderr)
        return 2

    system = SystemReadings(settings)
    url = metrics.serve(name, metrics.registry_of(system))  # type: ignore[arg-type]
    if url is None:
        print(f"exporter: set {metrics.TARGETS_VARIABLE} to the folder where "
              "it records its scrape address", file=sys.stderr)
        return 2

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    _log.info("exporting the system in %s on %s", settings.home, url)
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
