"""the library's contexts and their outboxes

Revision ID: 0001
Revises:
Create Date: 2026-12-04 05:40:39.819894

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "migrate_hosting",
        sa.Column("context", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("changed_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("context"),
    )
    op.create_table(
        "migrate_versions",
        sa.Column("context", sa.String(length=40), nullable=False),
        sa.Column("aggregate", sa.String(length=40), nullable=False),
        sa.Column("aggregate_key", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("context", "aggregate", "aggregate_key"),
    )
    op.create_table(
        "members",
        sa.Column("member_id", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("loans_out", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_table(
        "members_inbox",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("handled_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "members_outbox",
        sa.Column("position", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("aggregate_id", sa.String(length=80), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("published_at", sa.String(length=40), nullable=True),
        sa.Column("trace_header", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("members_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_members_outbox_published_at"), ["published_at"], unique=False
        )

    op.create_table(
        "books",
        sa.Column("isbn", sa.String(length=13), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("isbn"),
    )
    op.create_table(
        "catalogue_inbox",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("handled_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "catalogue_outbox",
        sa.Column("position", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("aggregate_id", sa.String(length=80), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("published_at", sa.String(length=40), nullable=True),
        sa.Column("trace_header", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("catalogue_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_catalogue_outbox_published_at"),
            ["published_at"],
            unique=False,
        )

    op.create_table(
        "copies",
        sa.Column("isbn", sa.String(length=13), nullable=False),
        sa.Column("copy_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shelf", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["isbn"],
            ["books.isbn"],
        ),
        sa.PrimaryKeyConstraint("isbn", "copy_no"),
    )
    op.create_table(
        "lending_inbox",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("handled_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "lending_outbox",
        sa.Column("position", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("aggregate_id", sa.String(length=80), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("published_at", sa.String(length=40), nullable=True),
        sa.Column("trace_header", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("lending_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lending_outbox_published_at"), ["published_at"], unique=False
        )

    op.create_table(
        "loans",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=8), nullable=False),
        sa.Column("isbn", sa.String(length=13), nullable=False),
        sa.Column("copy_no", sa.Integer(), nullable=False),
        sa.Column("lent_at", sa.String(length=40), nullable=False),
        sa.Column("returned_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("loan_id"),
    )
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_loans_member_id"), ["member_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loans_member_id"))

    op.drop_table("loans")
    with op.batch_alter_table("lending_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lending_outbox_published_at"))

    op.drop_table("lending_outbox")
    op.drop_table("lending_inbox")
    op.drop_table("copies")
    with op.batch_alter_table("catalogue_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalogue_outbox_published_at"))

    op.drop_table("catalogue_outbox")
    op.drop_table("catalogue_inbox")
    op.drop_table("books")
    with op.batch_alter_table("members_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_members_outbox_published_at"))

    op.drop_table("members_outbox")
    op.drop_table("members_inbox")
    op.drop_table("members")
    op.drop_table("migrate_versions")
    op.drop_table("migrate_hosting")
