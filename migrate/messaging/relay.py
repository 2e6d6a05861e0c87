"""The outbox relay: from each context's outbox table to its SNS topic.

A context writes its events into `<context>_outbox` in the same transaction
as the change they announce. The relay reads rows with no `published_at`
in position order, publishes them to the context's topic in batches, and
then stamps `published_at`. It needs only the tables' names and the routes
(context to topic ARN), never the contexts' code.

What it guarantees:

- Every outbox row is published at least once, in position order per
  context: a batch is stamped only after SNS accepted it, and a later batch
  is read only after the earlier one was stamped.
- A crash (or a failed stamp) between publishing and stamping publishes the
  same rows again on the next round, with the same event ids. That is the
  reason consumers deduplicate by event id.
- `run` survives an unreachable SNS endpoint or a locked database: it logs,
  backs off (doubling from `interval` up to `max_backoff` seconds) and
  carries on; it never raises.

What it does not do:

- Keep order in transit: on a standard topic SQS may deliver out of order.
  FIFO topics keep order per aggregate (see `publisher`).
- Coordinate with a second relay on the same outbox: both would publish the
  same rows (harmless, but twice the traffic). Run one per outbox.
- Skip a row whose payload is not an envelope: it stops that context's
  outbox at the row (`OutboxRowMalformed`), since later rows must not
  overtake it; the other contexts keep flowing.

Metrics: events published and failed rounds per context, and the backlog
(read from the outbox when scraped); served for Prometheus on a free
loopback port when `MIGRATE_METRICS_DIR` says where to record it.

Command line (SIGTERM or Ctrl-C stops it after the current round):

    python -m migrate.messaging.relay --database sqlite:///app.db \\
        --route billing=arn:aws:sns:us-east-1:123456789012:billing \\
        [--endpoint http://127.0.0.1:4566] [--region us-east-1]
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migrate.kernel.events import Envelope
from migrate.kernel.sql import create_engine, outbox_table
from migrate.messaging.clients import sns_client
from migrate.messaging.errors import (
    MessagingError,
    OutboxRowMalformed,
    PublishFailed,
    RelayIncomplete,
    RouteInvalid,
    SettingInvalid,
)
from migrate.messaging.publisher import SnsPublisher
from migrate.observe import metrics, setup_process, tracing

_log = logging.getLogger(__name__)

_CONTEXT = re.compile(r"^[a-z][a-z0-9_]*$")
# Caps one context's share of a round, so a busy outbox cannot starve the
# others (rows per round = batch * this).
MAX_BATCHES_PER_ROUND = 100


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        routes: Mapping[str, str],
        publisher: SnsPublisher,
        batch: int = 10,
    ):
        if batch < 1:
            raise SettingInvalid("batch", batch, "a batch holds at least one row")

        for context in routes:
            _check_context(context)
        self._engine = engine
        self._routes = dict(routes)
        self._publisher = publisher
        self._batch = batch
        metadata = sa.MetaData()
        self._outboxes = {ctx: outbox_table(metadata, ctx) for ctx in self._routes}
        # Every series from zero, so a rate reads 0 rather than nothing.
        for context in self._routes:
            metrics.process("migrate_relay_published_total").labels(context)
            metrics.process("migrate_relay_failures_total").labels(context)

    def relay_once(self) -> int:
        """Publish every context's unpublished rows; return how many.

        Raises `RelayIncomplete` (carrying the count and each failing
        context's error) when some context could not be relayed; the other
        contexts were relayed all the same.
        """
        published = 0
        failures: dict[str, BaseException] = {}
        for context, topic_arn in self._routes.items():
            count, failure = self._relay_context(context, topic_arn)
            published += count
            if count:
                metrics.process("migrate_relay_published_total").labels(
                    context
                ).inc(count)
            if failure is not None:
                failures[context] = failure
                metrics.process("migrate_relay_failures_total").labels(
                    context
                ).inc()
        if failures:
            raise RelayIncomplete(published, failures)

        return published

    def backlog(self) -> dict[str, int]:
        """Unpublished rows per context: the relay's lag."""
        with self._engine.connect() as connection:
            connection = connection.execution_options(readonly=True)
            return {
                context: connection.execute(
                    sa.select(sa.func.count()).where(table.c.published_at.is_(None))
                ).scalar_one()
                for context, table in self._outboxes.items()
            }

    def collect(self) -> Any:
        """The backlog as a metric family, for a scrape."""
        found = metrics.family("migrate_relay_backlog_events")
        for context, count in self.backlog().items():
            found.add_metric([context], count)
        yield found

    def run(
        self,
        stop_event: threading.Event,
        interval: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        """Relay until `stop_event` is set; idle `interval` seconds between
        rounds that found nothing."""
        failed_rounds = 0
        while not stop_event.is_set():
            try:
                published = self.relay_once()
            # The relay outlives any failure: it logs and tries again.
            except Exception as exc:  # noqa: BLE001
                failed_rounds += 1
                delay = min(max_backoff, interval * 2 ** min(failed_rounds, 16))
                _log.warning(
                    "relay round %d failed, retrying in %.1f s: %s",
                    failed_rounds,
                    delay,
                    exc,
                )
                stop_event.wait(delay)
                continue

            if failed_rounds:
                _log.info("relay recovered after %d failed round(s)", failed_rounds)
                failed_rounds = 0
            if published == 0:
                stop_event.wait(interval)

    def _relay_context(
        self, context: str, topic_arn: str
    ) -> tuple[int, Exception | None]:
        """Rows published, and the error that stopped this outbox early."""
        outbox = self._outboxes[context]
        published = 0
        try:
            for _ in range(MAX_BATCHES_PER_ROUND):
                rows = self._unpublished(outbox)
                if not rows:
                    break

                envelopes, malformed = _envelopes(context, rows)
                positions = [row.position for row in rows]
                traces = _Traces(topic_arn, [r.trace_header for r in rows])
                try:
                    self._publisher.publish_batch(
                        topic_arn, envelopes, traces.attributes[: len(envelopes)]
                    )
                except PublishFailed as failed:
                    traces.sent(failed)
                    # What SNS accepted before the refusal is out; stamp it so
                    # that only the rest is published again.
                    self._stamp(outbox, positions[: len(failed.published)])
                    published += len(failed.published)
                    raise

                traces.sent()
                self._stamp(outbox, positions[: len(envelopes)])
                published += len(envelopes)
                _log.debug("relayed %d %s event(s)", len(envelopes), context)
                if malformed is not None:
                    return published, malformed

                if len(rows) < self._batch:
                    break
        # One broken outbox must not hold up the others.
        except Exception as exc:  # noqa: BLE001
            return published, exc

        return published, None

    def _unpublished(self, outbox: sa.Table) -> Sequence[sa.Row[Any]]:
        query = (
            sa.select(outbox.c.position, outbox.c.payload, outbox.c.trace_header)
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.position)
            .limit(self._batch)
        )
        with self._engine.connect() as connection:
            connection = connection.execution_options(readonly=True)
            return connection.execute(query).all()

    def _stamp(self, outbox: sa.Table, positions: list[int]) -> None:
        if not positions:
            return

        stamp = datetime.now(UTC).isoformat()
        with self._engine.begin() as connection:
            connection.execute(
                outbox.update()
                .where(outbox.c.position.in_(positions))
                .where(outbox.c.published_at.is_(None))
                .values(published_at=stamp)
            )


class _Traces:
    """The traces a batch continues: one relay segment per sampled row.

    Each row's stored header names the request that made the change. Its
    event leaves with a header whose parent is this relay's call to SNS, so
    the consumer's segment hangs below the publish. A row of an unsampled
    request keeps its header as it was (`Sampled=0` travels on).
    """

    def __init__(self, topic_arn: str, headers: Sequence[str | None]):
        self.documents: list[tracing.Document | None] = []
        self.attributes: list[dict[str, str] | None] = []
        for text in headers:
            header = tracing.TraceHeader.parse(text)
            document = None
            if header is not None and header.sampled and tracing.enabled():
                document = tracing.Document(
                    tracing.service_name(), header.root, header.parent
                )
                call = document.child("SNS", namespace="aws")
                call.aws = {"operation": "PublishBatch", "topic_arn": topic_arn}
                header = call.header()
            self.documents.append(document)
            self.attributes.append(
                None if header is None else {tracing.ATTRIBUTE: str(header)}
            )

    def sent(self, failed: PublishFailed | None = None) -> None:
        for document in self.documents:
            if document is None:
                continue
            if failed is not None:
                document.subsegments[0].failed(failed)
            tracing.emit(document.finish())


def _envelopes(
    context: str, rows: Sequence[sa.Row[Any]]
) -> tuple[list[Envelope], OutboxRowMalformed | None]:
    """The envelopes of the rows up to the first malformed one, and the error
    for that row if there is one."""
    envelopes: list[Envelope] = []
    for position, payload, _ in rows:
        try:
            envelopes.append(Envelope.from_json(payload))
        except (ValueError, TypeError) as exc:
            return envelopes, OutboxRowMalformed(context, position, str(exc))

    return envelopes, None


def _check_context(context: str) -> None:
    if not _CONTEXT.match(context):
        raise RouteInvalid(
            context,
            "a context name is lower-case letters, digits and '_', "
            "starting with a letter",
        )


def parse_route(spec: str) -> tuple[str, str]:
    """`billing=arn:aws:sns:...` -> ("billing", "arn:aws:sns:...")."""
    context, separator, topic_arn = spec.partition("=")
    if not separator:
        raise RouteInvalid(spec, "a route is CONTEXT=TOPIC_ARN")

    _check_context(context)
    if not topic_arn.startswith("arn:") or ":sns:" not in topic_arn:
        raise RouteInvalid(spec, "the topic is an SNS ARN (arn:aws:sns:...)")

    return context, topic_arn


def parse_routes(specs: Sequence[str]) -> dict[str, str]:
    routes: dict[str, str] = {}
    for spec in specs:
        context, topic_arn = parse_route(spec)
        if context in routes:
            raise RouteInvalid(spec, f"{context} is routed once")

        routes[context] = topic_arn
    return routes


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m migrate.messaging.relay",
        description="Publish outbox rows to SNS topics until stopped.",
    )
    parser.add_argument("--database", required=True, help="SQLAlchemy URL")
    parser.add_argument(
        "--route",
        action="append",
        required=True,
        metavar="CONTEXT=TOPIC_ARN",
        help="publish <CONTEXT>_outbox to this topic (repeatable)",
    )
    parser.add_argument("--endpoint", help="SNS endpoint URL (the emulator)")
    parser.add_argument("--region", help="AWS region (us-east-1 on the emulator)")
    parser.add_argument("--batch", type=int, default=10, help="rows per publish")
    parser.add_argument(
        "--interval", type=float, default=0.2, help="seconds between idle rounds"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


EXIT_STOPPED = 0
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments().parse_args(argv)
    name = setup_process("relay", level=arguments.log_level)
    try:
        routes = parse_routes(arguments.route)
        relay = OutboxRelay(
            create_engine(arguments.database),
            routes,
            SnsPublisher(sns_client(arguments.endpoint, arguments.region)),
            batch=arguments.batch,
        )
    except MessagingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    metrics.serve(name, metrics.registry_of(relay))  # type: ignore[arg-type]
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        _log.info("stopping the relay on signal %d", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _log.info("relaying %s", ", ".join(f"{c} -> {a}" for c, a in routes.items()))
    relay.run(stop, interval=arguments.interval)
    return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(main())
