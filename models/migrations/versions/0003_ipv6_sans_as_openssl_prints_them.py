"""SSL Details: IPv6 Subject Alternative Names as ``openssl x509`` prints them

Decoding now writes an IPv6 SAN as OpenSSL does (``2001:DB8:0:0:0:0:0:1``, every group, in
uppercase); audits stored before held Python's form (``2001:db8::1``). Rewriting them here
keeps the next refresh from reporting a change the certificate never made. Only lists with a
colon are read, and an entry is rewritten when the stored leaf has it as an IP address SAN (a
misissued certificate can carry IPv6 text as a DNS name, which stays as it is); without a
readable leaf, any IPv6 text is taken for an address.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 22:30:00
"""

import ipaddress
import struct
import warnings
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op
from cryptography import x509
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
    sa.column("chain_pem", sa.Text),
)


def _openssl_form(address: ipaddress.IPv6Address) -> str:
    return ":".join(f"{group:X}" for group in struct.unpack("!8H", address.packed))


def _python_form(address: ipaddress.IPv6Address) -> str:
    return str(address)


def _ipv6(name: str) -> ipaddress.IPv6Address | None:
    if ":" not in name:
        return None
    try:
        return ipaddress.IPv6Address(name)
    except ValueError:
        return None


def _ip_sans(chain_pem: str | None) -> set[ipaddress.IPv6Address] | None:
    """The IPv6 addresses among the leaf's IP address SANs; None when it cannot be read."""
    try:
        with warnings.catch_warnings():  # e.g. a serial number of 0
            warnings.simplefilter("ignore")
            leaf = x509.load_pem_x509_certificate((chain_pem or "").encode("ascii"))
            extension = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    except (ValueError, UnicodeEncodeError):
        return None
    addresses = extension.value.get_values_for_type(x509.IPAddress)
    return {a for a in addresses if isinstance(a, ipaddress.IPv6Address)}


def _rewrite(form: Callable[[ipaddress.IPv6Address], str]) -> None:
    connection = op.get_bind()
    names = _DETAILS.c.subject_alternative_names
    rows = connection.execute(
        sa.select(_DETAILS.c.device_id, names, _DETAILS.c.chain_pem).where(
            sa.cast(names, sa.Text).like("%:%")
        )
    ).all()
    updates = []
    for device_id, sans, chain_pem in rows:
        addresses = _ip_sans(chain_pem)
        rewritten = []
        for name in sans or []:
            address = _ipv6(name)
            is_address = address is not None and (addresses is None or address in addresses)
            rewritten.append(form(address) if is_address and address is not None else name)
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
