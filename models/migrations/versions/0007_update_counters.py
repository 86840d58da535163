"""update_counters and update_duration_buckets: the update pipeline's Prometheus counters

Every process that updates devices (Dagster runs, API workers) adds its counts to these rows,
so ``GET /metrics`` shows the same totals whichever worker answers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "update_counters",
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("category", "outcome"),
    )
    op.create_table(
        "update_duration_buckets",
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("le", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("sum_seconds", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("category", "le"),
    )


def downgrade() -> None:
    op.drop_table("update_duration_buckets")
    op.drop_table("update_counters")
