"""devices: the protocol of a host SSL Source, and the count of consecutive failed updates

``ssl_protocol`` says how the TLS handshake is reached ("tls": at once, "https", and the
STARTTLS protocols); every host source saved before had TLS at once. ``consecutive_failures``
counts failed updates since the last one that worked (alerts after N failures).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ssl_protocol", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column(
                "consecutive_failures", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )
    op.execute("UPDATE devices SET ssl_protocol = 'tls' WHERE ssl_source_kind = 'HOST'")


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("consecutive_failures")
        batch_op.drop_column("ssl_protocol")
