"""ssl_details: the leaf's revocation status (OCSP or CRL), when it was asked, when and why revoked

Rows written before this version say UNAVAILABLE (never asked); the next update of the device
asks.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-08 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ssl_details", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "revocation_status",
                sa.String(length=12),
                nullable=False,
                server_default="UNAVAILABLE",
            )
        )
        batch_op.add_column(
            sa.Column(
                "revocation_checked_at", models.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("revoked_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("revocation_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ssl_details", schema=None) as batch_op:
        batch_op.drop_column("revocation_reason")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("revocation_checked_at")
        batch_op.drop_column("revocation_status")
