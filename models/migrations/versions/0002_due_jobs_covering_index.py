"""due jobs: one index in the due-device query's order that also holds the claim

The sensor's query (``tracking.jobs.due_jobs``) orders by ``(due_at, device_id)`` and skips
jobs claimed by runs in flight. With an index on ``due_at`` alone, PostgreSQL sorts every group
of equal due times and both databases read each skipped job's row for its claim; this index
serves the order and the claim filter by itself (see benchmarks/selection.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("update_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_update_jobs_due", ["due_at", "device_id", "claimed_until"], unique=False
        )
        batch_op.drop_index("ix_update_jobs_due_at")


def downgrade() -> None:
    with op.batch_alter_table("update_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_update_jobs_due_at", ["due_at"], unique=False)
        batch_op.drop_index("ix_update_jobs_due")
