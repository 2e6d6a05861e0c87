"""versions of declared aggregates, for replicas that follow row images

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "migrate_versions",
        sa.Column("context", sa.String(length=40), nullable=False),
        sa.Column("aggregate", sa.String(length=40), nullable=False),
        sa.Column("aggregate_key", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("context", "aggregate", "aggregate_key"),
    )


def downgrade() -> None:
    op.drop_table("migrate_versions")
