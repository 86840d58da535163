"""Beyond HTTPS: every address of a host, the key's type and size, the negotiated cipher

``devices.check_all_addresses`` asks for every A and AAAA address of a host source to be
probed. ``ssl_details`` gains the subject key's type and size (read here from each stored leaf,
so the next refresh reports no change the certificate never made), the cipher of the last
handshake (unknown for audits stored before: null) and ``endpoints``, the addresses checked;
an audit stored before gets the one address it was retrieved from.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 03:00:00
"""

import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_DETAILS = sa.table(
    "ssl_details",
    sa.column("device_id", sa.Integer),
    sa.column("chain_pem", sa.Text),
    sa.column("fingerprint_sha256", sa.String),
    sa.column("valid_until", sa.DateTime(timezone=True)),
    sa.column("address", sa.String),
    sa.column("protocol", sa.String),
    sa.column("key_type", sa.String),
    sa.column("key_size", sa.Integer),
    sa.column("endpoints", _JSON),
)
_DEVICES = sa.table("devices", sa.column("id", sa.Integer), sa.column("ssl_port", sa.Integer))


def _key_facts(chain_pem: str | None) -> tuple[str, int]:
    """As ``tracking.core.ssl_details`` reads them (a migration keeps its own copy)."""
    try:
        with warnings.catch_warnings():  # e.g. a serial number of 0
            warnings.simplefilter("ignore")
            leaf = x509.load_pem_x509_certificate((chain_pem or "").encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return "unknown", 0
    try:
        key: Any = leaf.public_key()
    except Exception:
        key = None
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        return ("RSA" if isinstance(key, rsa.RSAPublicKey) else "DSA"), key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return leaf.public_key_algorithm_oid.dotted_string, 0


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.isoformat()


def upgrade() -> None:
    # Not in batch mode: SQLite then adds the column in place, where a batch would copy the
    # table, which the foreign keys pointing at devices forbid once it holds rows.
    op.add_column(
        "devices",
        sa.Column("check_all_addresses", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    with op.batch_alter_table("ssl_details", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_type", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("key_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cipher", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("endpoints", _JSON, nullable=True))
    _fill_details()
    with op.batch_alter_table("ssl_details", schema=None) as batch_op:
        batch_op.alter_column("key_type", existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column("key_size", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("endpoints", existing_type=_JSON, nullable=False)


def _fill_details() -> None:
    """Each stored audit's key facts, and its one endpoint (none for a PEM source)."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            _DETAILS.c.device_id,
            _DETAILS.c.chain_pem,
            _DETAILS.c.fingerprint_sha256,
            _DETAILS.c.valid_until,
            _DETAILS.c.address,
            _DETAILS.c.protocol,
            _DEVICES.c.ssl_port,
        ).select_from(_DETAILS.join(_DEVICES, _DEVICES.c.id == _DETAILS.c.device_id))
    ).all()
    updates = []
    for row in rows:
        key_type, key_size = _key_facts(row.chain_pem)
        endpoints = []
        if row.address is not None:
            endpoints.append(
                {
                    "address": row.address,
                    "port": row.ssl_port or 443,
                    "fingerprint_sha256": row.fingerprint_sha256,
                    "valid_until": _iso(row.valid_until),
                    "tls_version": row.protocol,
                    "cipher": None,
                    "error": None,
                }
            )
        updates.append(
            {"k_id": row.device_id, "v_type": key_type, "v_size": key_size, "v_ends": endpoints}
        )
    if updates:
        connection.execute(
            _DETAILS.update()
            .where(_DETAILS.c.device_id == sa.bindparam("k_id"))
            .values(
                key_type=sa.bindparam("v_type"),
                key_size=sa.bindparam("v_size"),
                endpoints=sa.bindparam("v_ends", type_=_JSON),
            ),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table("ssl_details", schema=None) as batch_op:
        batch_op.drop_column("endpoints")
        batch_op.drop_column("cipher")
        batch_op.drop_column("key_size")
        batch_op.drop_column("key_type")
    op.drop_column("devices", "check_all_addresses")  # SQLite 3.35+ drops it in place
