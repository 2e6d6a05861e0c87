"""outboxes keep the trace header of the change they announce

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 06:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTEXTS = ("catalog", "customers", "ordering", "billing", "shipping")


def upgrade() -> None:
    for context in CONTEXTS:
        op.add_column(
            f"{context}_outbox",
            sa.Column("trace_header", sa.String(length=200), nullable=True),
        )


def downgrade() -> None:
    for context in CONTEXTS:
        with op.batch_alter_table(f"{context}_outbox") as table:
            table.drop_column("trace_header")
