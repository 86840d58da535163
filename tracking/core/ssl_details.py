"""SSL Details: the fields the reference shows for a certificate, declared once, and how they
are read from an X.509 certificate as ``openssl x509`` prints them.

The stored record's columns, the Activity note's labels, the diff with the last audit and the
API's fields are all derived from the fields of :class:`SslDetails`.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from tracking.core.certificates import subject_alternative_names
from tracking.core.changes import Change
from tracking.core.der import rfc2253, serial_text
from tracking.core.errors import ErrorCode, ProbeError


def _shown_as(label: str) -> dict[str, str]:
    return {"label": label}


@dataclass(frozen=True)
class SslDetails:
    """In the reference's order, each with the label people read."""

    common_name: str | None = field(metadata=_shown_as("Common Name"))
    valid_from: datetime = field(metadata=_shown_as("Valid From"))
    valid_until: datetime = field(metadata=_shown_as("Valid Until"))
    issued_by: str | None = field(metadata=_shown_as("Issued By"))
    organization: str | None = field(metadata=_shown_as("Organization"))
    organizational_unit: str | None = field(metadata=_shown_as("Organizational Unit"))
    location: str | None = field(metadata=_shown_as("Location"))
    serial_number: str = field(metadata=_shown_as("Serial Number"))
    signature_algorithm: str = field(metadata=_shown_as("Signature Algorithm"))
    subject_alternative_names: tuple[str, ...] = field(
        metadata=_shown_as("Subject Alternative Names")
    )
    fingerprint_sha256: str = field(metadata=_shown_as("SHA-256 Fingerprint"))

    @property
    def subject_alternative_names_joined(self) -> str:
        return " | ".join(self.subject_alternative_names)


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SslDetails))
LABELS: Mapping[str, str] = {f.name: f.metadata["label"] for f in fields(SslDetails)}


def stored_values(details: SslDetails) -> dict[str, object]:
    """The values of the record's columns of the same names (lists, not tuples)."""
    values = {name: getattr(details, name) for name in FIELD_NAMES}
    values["subject_alternative_names"] = list(details.subject_alternative_names)
    return values


def from_stored(record: object) -> SslDetails:
    """Back from a stored record or row that has a column (attribute) per field."""
    values = {name: getattr(record, name) for name in FIELD_NAMES}
    values["subject_alternative_names"] = tuple(values["subject_alternative_names"])
    return SslDetails(**values)


def details_changes(old: SslDetails | None, new: SslDetails) -> list[Change]:
    """Every field that differs, in the reference's order; all of ``new`` when no old."""
    changes = []
    for name, label in LABELS.items():
        before = _field_text(old, name) if old is not None else None
        after = _field_text(new, name)
        if before != after:
            changes.append(Change(name, label, before, after))
    return changes


def _field_text(details: SslDetails, name: str) -> str | None:
    if name == "subject_alternative_names":
        return details.subject_alternative_names_joined or None
    value = getattr(details, name)
    if isinstance(value, datetime):  # naive means UTC (as SQLite hands datetimes back)
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.isoformat()
    return None if value is None else str(value)


# Microsoft-style names, as Windows' certificate viewer (and the reference) shows them.
_SIGNATURE_ALGORITHMS = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "md5RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "sha224RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512RSA",
    SignatureAlgorithmOID.RSASSA_PSS: "RSASSA-PSS",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "sha1ECDSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "sha224ECDSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "sha256ECDSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "sha384ECDSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "sha512ECDSA",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "sha1DSA",
    SignatureAlgorithmOID.DSA_WITH_SHA224: "sha224DSA",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "sha256DSA",
    SignatureAlgorithmOID.ED25519: "ED25519",
    SignatureAlgorithmOID.ED448: "ED448",
}


def ssl_details(cert: x509.Certificate) -> SslDetails:
    """The reference's SSL Details of ``cert``. Expired, not yet valid, self-signed and
    untrusted certificates are decoded like any other; only an empty issuer (no Certificate
    Authority value) or undecodable extensions give ``SSL_DETAILS_UNAVAILABLE``."""
    issuer_name = cert.issuer
    if not issuer_name.rdns:
        raise ProbeError(ErrorCode.SSL_DETAILS_UNAVAILABLE)
    try:
        sans = subject_alternative_names(cert)
    except ValueError as exc:  # malformed or duplicate extensions
        raise ProbeError(ErrorCode.SSL_DETAILS_UNAVAILABLE) from exc
    subject, issuer = _first_values(cert.subject), _first_values(issuer_name)
    location = [subject.get(oid) for oid in _LOCATION_OIDS]
    return SslDetails(
        common_name=subject.get(NameOID.COMMON_NAME),
        valid_from=cert.not_valid_before_utc,
        valid_until=cert.not_valid_after_utc,
        issued_by=(
            issuer.get(NameOID.COMMON_NAME)
            or issuer.get(NameOID.ORGANIZATION_NAME)
            or rfc2253(issuer_name)
        ),
        organization=subject.get(NameOID.ORGANIZATION_NAME),
        organizational_unit=subject.get(NameOID.ORGANIZATIONAL_UNIT_NAME),
        location=", ".join(part for part in location if part) or None,
        serial_number=serial_text(cert.tbs_certificate_bytes),
        signature_algorithm=_SIGNATURE_ALGORITHMS.get(
            cert.signature_algorithm_oid, cert.signature_algorithm_oid.dotted_string
        ),
        subject_alternative_names=tuple(
            name.value if isinstance(name, x509.DNSName) else _address_text(name.value)
            for name in sans
        ),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    )


def _first_values(name: x509.Name) -> dict[x509.ObjectIdentifier, str]:
    """The first non-empty value of each attribute type in ``name``, in one pass (absent
    values are missing, never ""); asking the ``Name`` per type scans it every time."""
    values: dict[x509.ObjectIdentifier, str] = {}
    for attribute in name:
        value = attribute.value
        if isinstance(value, str) and value and attribute.oid not in values:
            values[attribute.oid] = value
    return values


def _address_text(address: object) -> str:
    """An IP address as ``openssl x509`` prints it: IPv6 with every group, in uppercase hex,
    no ``::`` (``2001:DB8:0:0:0:0:0:1``)."""
    if isinstance(address, ipaddress.IPv6Address):
        return ":".join(f"{group:X}" for group in struct.unpack("!8H", address.packed))
    return str(address)


_LOCATION_OIDS = (NameOID.LOCALITY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.COUNTRY_NAME)
