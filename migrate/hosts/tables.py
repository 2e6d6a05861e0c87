"""Tables a service host keeps beside its context's own."""

import sqlalchemy as sa

metadata = sa.MetaData()

# Events a context consumes, received while this host was not its writer.
# The writer before the flip handles them; once this host becomes the writer
# it replays them, and the context's own idempotence (invoice id = order id)
# turns the ones already handled into no-ops.
deferred = sa.Table(
    "migrate_deferred",
    metadata,
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("consumer", sa.String(80), nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("payload", sa.Text, nullable=False),
)

# Where the backfill took its snapshot: the source outbox's last position
# before it read anything. Events after it reach this copy through sync.
backfills = sa.Table(
    "migrate_backfill",
    metadata,
    sa.Column("context", sa.String(40), primary_key=True),
    sa.Column("source_position", sa.Integer, nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("finished_at", sa.String(40), nullable=True),
)

# The last key copied of each table, written in the transaction that copied
# the chunk: a backfill killed at any point resumes after it.
checkpoints = sa.Table(
    "migrate_backfill_checkpoint",
    metadata,
    sa.Column("context", sa.String(40), primary_key=True),
    sa.Column("table_name", sa.String(80), primary_key=True),
    sa.Column("last_key", sa.Text, nullable=False),
    sa.Column("rows_seen", sa.Integer, nullable=False),
)
