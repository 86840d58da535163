"""API tokens: mark the one registered from DSTRACK_ADMIN_TOKEN

A token registered from ``DSTRACK_ADMIN_TOKEN`` is marked, so that a restart with another
token there revokes the previous one. Tokens stored before this revision are left unmarked
(they keep working until ``dstrack revoke-tokens``): which of them came from the environment
is not known.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The default fills the rows already there; the application always gives the value.
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("from_environment", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column("from_environment", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("from_environment")
