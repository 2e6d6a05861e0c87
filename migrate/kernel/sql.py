"""The SQL side of a context: engines, the outbox, the inbox, hosting roles.

Every context owns an outbox table (`<context>_outbox`) written in the same
transaction as the change it announces, and an inbox table
(`<context>_inbox`) that records the event ids its consumers have handled.
`migrate_hosting` records, per database, which role the host plays for each
context: `writer` runs its commands; `fenced` refuses them while writes move;
`replica` applies the writer's events and refuses commands.
`migrate_versions` holds, per aggregate a context declares, the version of
its last change (on a writer) or of the last image applied (on a replica).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from migrate.observe import tracing

WRITER = "writer"
FENCED = "fenced"
REPLICA = "replica"


def outbox_table(metadata: sa.MetaData, context: str) -> sa.Table:
    return sa.Table(
        f"{context}_outbox",
        metadata,
        # The position orders publishing; relays publish in position order.
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_type", sa.String(80), nullable=False),
        sa.Column("aggregate_id", sa.String(80), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("origin", sa.String(40), nullable=False),
        sa.Column("occurred_at", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("published_at", sa.String(40), nullable=True, index=True),
        # The X-Ray header of the request that made the change, so the relay
        # that publishes the event continues that request's trace.
        sa.Column("trace_header", sa.String(200), nullable=True),
    )


def inbox_table(metadata: sa.MetaData, context: str) -> sa.Table:
    return sa.Table(
        f"{context}_inbox",
        metadata,
        sa.Column("consumer", sa.String(80), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("handled_at", sa.String(40), nullable=False),
    )


def hosting_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "migrate_hosting",
        metadata,
        sa.Column("context", sa.String(40), primary_key=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("changed_at", sa.String(40), nullable=False),
    )


def versions_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "migrate_versions",
        metadata,
        sa.Column("context", sa.String(40), primary_key=True),
        sa.Column("aggregate", sa.String(40), primary_key=True),
        # The key's values as a JSON list, so a composite key fits one column.
        sa.Column("aggregate_key", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        # A replica remembers a removal, so a row copied by a backfill that
        # read it before the removal can be taken away again.
        sa.Column("removed", sa.Boolean, nullable=False, default=False),
    )


HOSTING_METADATA = sa.MetaData()
HOSTING = hosting_table(HOSTING_METADATA)
VERSIONS = versions_table(HOSTING_METADATA)


def create_engine(url: str) -> Engine:
    """An engine whose transactions are safe for concurrent writers.

    SQLite gets WAL (readers never wait for the writer), a busy timeout, and
    BEGIN IMMEDIATE so that a transaction which reads a hosting role and then
    writes cannot be overtaken by a fence committed in between.
    """
    if not url.startswith("sqlite"):
        # Batches an executemany that SQLAlchemy cannot turn into one
        # multi-row INSERT (ON CONFLICT, UPDATE) into few round trips.
        engine = sa.create_engine(
            url, pool_pre_ping=True, executemany_mode="values_plus_batch"
        )
        tracing.instrument_engine(engine)
        return engine

    engine = sa.create_engine(
        url, future=True, connect_args={"timeout": 30, "check_same_thread": False}
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        # Readers take no write lock, so they never queue behind writers.
        readonly = connection.get_execution_options().get("readonly", False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    tracing.instrument_engine(engine)
    return engine
