"""SSL Details: IPv6 Subject Alternative Names as ``openssl x509`` prints them

Decoding now writes an IPv6 SAN as OpenSSL does (``2001:DB8:0:0:0:0:0:1``, every group, in
uppercase); audits stored before held Python's form (``2001:db8::1``). Rewriting them here
keeps the next refresh from reporting a change the certificate never made. DNS names never
hold a colon, so only lists with one are read.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 22:30:00
"""

import ipaddress
import struct
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DETAILS = sa.table(
    "ssl_details",
    sa.column("device_id", sa.Integer),
    sa.column(
        "subject_alternative_names", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    ),
)


def _openssl_form(name: str) -> str:
    address = _ipv6(name)
    if address is None:
        return name
    return ":".join(f"{group:X}" for group in struct.unpack("!8H", address.packed))


def _python_form(name: str) -> str:
    address = _ipv6(name)
    return name if address is None else str(address)


def _ipv6(name: str) -> ipaddress.IPv6Address | None:
    if ":" not in name:
        return None
    try:
        return ipaddress.IPv6Address(name)
    except ValueError:
        return None


def _rewrite(form: Callable[[str], str]) -> None:
    connection = op.get_bind()
    names = _DETAILS.c.subject_alternative_names
    rows = connection.execute(
        sa.select(_DETAILS.c.device_id, names).where(sa.cast(names, sa.Text).like("%:%"))
    ).all()
    updates = []
    for device_id, sans in rows:
        rewritten = [form(name) for name in sans or []]
        if rewritten != sans:
            updates.append({"key": device_id, "sans": rewritten})
    if updates:
        connection.execute(
            _DETAILS.update()
            .where(_DETAILS.c.device_id == sa.bindparam("key"))
            .values(subject_alternative_names=sa.bindparam("sans")),
            updates,
        )


def upgrade() -> None:
    _rewrite(_openssl_form)


def downgrade() -> None:
    _rewrite(_python_form)
