"""Pure X.509 decoding: a certificate (PEM or DER) -> SslDetails, plus chain verdicts.

No sockets, no database: the network side lives in ``tracking.probes.tls``.
What ``openssl x509`` prints is the oracle for every text field (CONTRACT section 4).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import struct
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import idna
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from tracking.core.errors import ErrorCode, ProbeError, ValidationError

MAX_PEM_CHARS = 64 * 1024

_PEM_MARKER = re.compile(r"-----(BEGIN|END) ([A-Z0-9 ]+)-----")
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def load_pem_certificate(text: str) -> x509.Certificate:
    """Exactly one ``CERTIFICATE`` PEM block, decodable, else ``INVALID_PEM``.

    Text around the block is ignored (as ``openssl`` does); any other PEM block, such as a
    private key pasted along, is refused so that no key is ever stored.
    """
    if len(text) > MAX_PEM_CHARS:
        raise ValidationError(ErrorCode.INVALID_PEM, field="sslSource")
    markers = _PEM_MARKER.findall(text)
    if markers != [("BEGIN", "CERTIFICATE"), ("END", "CERTIFICATE")]:
        raise ValidationError(ErrorCode.INVALID_PEM, field="sslSource")
    try:
        data = text.encode("ascii")
        if _serial_is_positive(_pem_der(data)):
            return x509.load_pem_x509_certificate(data)
        with _tolerant_parsing():
            return x509.load_pem_x509_certificate(data)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValidationError(ErrorCode.INVALID_PEM, field="sslSource") from exc


def load_der_chain(chain_der: Sequence[bytes]) -> tuple[x509.Certificate, ...]:
    """The certificates a server sent, in its order; ValueError if one does not decode."""
    return tuple(_load_der(der) for der in chain_der)


def _load_der(der: bytes) -> x509.Certificate:
    if _serial_is_positive(der):
        return x509.load_der_x509_certificate(der)
    with _tolerant_parsing():
        return x509.load_der_x509_certificate(der)


def load_pem_bundle(data: bytes) -> list[x509.Certificate]:
    """Every decodable ``CERTIFICATE`` block of a CA bundle; comments, other blocks and broken
    certificates are skipped so that one bad entry does not void the whole trust store."""
    certs = []
    with _tolerant_parsing():
        for block in _PEM_CERTIFICATE.findall(data):
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
    return certs


# cryptography warns when it loads a certificate whose serial number is 0 or negative, which it
# means to refuse one day; Go Daddy's, Starfield's and HARICA's roots, trusted everywhere, have
# one. Such certificates are decoded and shown like any other, without the warning. Silencing
# it takes catch_warnings, which swaps the process-wide filters (and resets every module's
# "shown once" memory), so it is kept to those certificates and to one thread at a time.
_WARNINGS_LOCK = threading.Lock()


@contextmanager
def _tolerant_parsing() -> Iterator[None]:
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def _serial_is_positive(der: bytes | None) -> bool:
    """Whether a certificate's DER has a positive serial number (False when unreadable here:
    the tolerant load then decides)."""
    if der is None:
        return False
    try:
        ((_, certificate, _),) = _der_elements(der)
        _, tbs, _ = next(_der_elements(certificate))
        serial = _serial_content(tbs)
    except (ValueError, IndexError, StopIteration):
        return False
    return bool(serial) and not serial[0] & 0x80 and any(serial)


def _pem_der(data: bytes) -> bytes | None:
    """The DER inside the one CERTIFICATE block of ``data``, or None."""
    match = _PEM_CERTIFICATE.search(data)
    if match is None:
        return None
    body = match.group(0).split(b"-----")[2]
    try:
        return base64.b64decode(body)  # whitespace and line breaks are skipped
    except binascii.Error:
        return None


def chain_to_pem(chain: Sequence[x509.Certificate]) -> str:
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for cert in chain)


# --- SSL Details -------------------------------------------------------------------------------

# Human labels, in the reference's order; also the order of ``details_changes``.
_LABELS = {
    "common_name": "Common Name",
    "valid_from": "Valid From",
    "valid_until": "Valid Until",
    "issued_by": "Issued By",
    "organization": "Organization",
    "organizational_unit": "Organizational Unit",
    "location": "Location",
    "serial_number": "Serial Number",
    "signature_algorithm": "Signature Algorithm",
    "subject_alternative_names": "Subject Alternative Names",
    "fingerprint_sha256": "SHA-256 Fingerprint",
}


@dataclass(frozen=True)
class SslDetails:
    common_name: str | None
    valid_from: datetime
    valid_until: datetime
    issued_by: str | None
    organization: str | None
    organizational_unit: str | None
    location: str | None
    serial_number: str
    signature_algorithm: str
    subject_alternative_names: tuple[str, ...]
    fingerprint_sha256: str

    @property
    def subject_alternative_names_joined(self) -> str:
        return " | ".join(self.subject_alternative_names)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: datetimes in ISO-8601 with offset, SANs as a list."""
        data: dict[str, object] = {field: getattr(self, field) for field in _LABELS}
        data["valid_from"] = self.valid_from.isoformat()
        data["valid_until"] = self.valid_until.isoformat()
        data["subject_alternative_names"] = list(self.subject_alternative_names)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SslDetails:
        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        sans = data.get("subject_alternative_names") or []
        if not isinstance(sans, list | tuple):
            raise ValueError("subject_alternative_names must be a list")
        return cls(
            common_name=text("common_name"),
            valid_from=datetime.fromisoformat(str(data["valid_from"])),
            valid_until=datetime.fromisoformat(str(data["valid_until"])),
            issued_by=text("issued_by"),
            organization=text("organization"),
            organizational_unit=text("organizational_unit"),
            location=text("location"),
            serial_number=str(data["serial_number"]),
            signature_algorithm=str(data["signature_algorithm"]),
            subject_alternative_names=tuple(str(san) for san in sans),
            fingerprint_sha256=str(data["fingerprint_sha256"]),
        )


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
        sans = _subject_alternative_names(cert)
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
            or _rfc2253(issuer_name)
        ),
        organization=subject.get(NameOID.ORGANIZATION_NAME),
        organizational_unit=subject.get(NameOID.ORGANIZATIONAL_UNIT_NAME),
        location=", ".join(part for part in location if part) or None,
        serial_number=_serial_text(cert),
        signature_algorithm=_SIGNATURE_ALGORITHMS.get(
            cert.signature_algorithm_oid, cert.signature_algorithm_oid.dotted_string
        ),
        subject_alternative_names=tuple(
            name.value if isinstance(name, x509.DNSName) else _address_text(name.value)
            for name in sans
        ),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    )


def details_changes(
    old: SslDetails | None, new: SslDetails
) -> list[tuple[str, str | None, str | None]]:
    """(label, old text, new text) for every field that differs; all of ``new`` when no old."""
    changes = []
    for field, label in _LABELS.items():
        before = _field_text(old, field) if old is not None else None
        after = _field_text(new, field)
        if before != after:
            changes.append((label, before, after))
    return changes


_LOCATION_OIDS = (NameOID.LOCALITY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.COUNTRY_NAME)


def _field_text(details: SslDetails, field: str) -> str | None:
    if field == "subject_alternative_names":
        return details.subject_alternative_names_joined or None
    value = getattr(details, field)
    if isinstance(value, datetime):  # naive means UTC (as SQLite hands datetimes back)
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.isoformat()
    return None if value is None else str(value)


def _first_values(name: x509.Name) -> dict[x509.ObjectIdentifier, str]:
    """The first non-empty value of each attribute type in ``name``, in one pass (absent
    values are missing, never ""); asking the ``Name`` per type scans it every time."""
    values: dict[x509.ObjectIdentifier, str] = {}
    for attribute in name:
        value = attribute.value
        if isinstance(value, str) and value and attribute.oid not in values:
            values[attribute.oid] = value
    return values


def _serial_text(cert: x509.Certificate) -> str:
    """As ``openssl x509 -serial``: uppercase hex of the magnitude's bytes (0 -> "00").

    Read from the DER: ``cert.serial_number`` warns on the zero and negative serials that some
    certificates still carry, and those are shown, not rejected.
    """
    ((_, tbs, _),) = _der_elements(cert.tbs_certificate_bytes)
    value = int.from_bytes(_serial_content(tbs), "big", signed=True)
    digits = f"{abs(value):X}"
    return ("-" if value < 0 else "") + digits.zfill(len(digits) + len(digits) % 2)


def _serial_content(tbs: bytes) -> bytes:
    """The serial number INTEGER's content bytes in a TBSCertificate's content, which starts
    with an optional [0] version, then the serial."""
    return next(content for tag, content, _ in _der_elements(tbs) if tag == 0x02)


def _address_text(address: object) -> str:
    """An IP address as ``openssl x509`` prints it: IPv6 with every group, in uppercase hex,
    no ``::`` (``2001:DB8:0:0:0:0:0:1``)."""
    if isinstance(address, ipaddress.IPv6Address):
        return ":".join(f"{group:X}" for group in struct.unpack("!8H", address.packed))
    return str(address)


def _subject_alternative_names(cert: x509.Certificate) -> list[x509.DNSName | x509.IPAddress]:
    """DNS and IP entries in certificate order; [] when there is no SAN extension."""
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [name for name in extension.value if isinstance(name, x509.DNSName | x509.IPAddress)]


# --- Issuer DN as `openssl x509 -nameopt RFC2253` prints it -----------------------------------

# OpenSSL's short names for the attribute types seen in practice; any other type is printed
# as its dotted OID with a hex dump of the value, as OpenSSL does for types it does not know.
_OPENSSL_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.13": "description",
    "2.5.4.15": "businessCategory",
    "2.5.4.17": "postalCode",
    "2.5.4.41": "name",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
}

# ASN.1 string tag -> codec of its content (one byte per character for the 8-bit types).
_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "latin-1",  # NumericString
    0x13: "latin-1",  # PrintableString
    0x14: "latin-1",  # T61String: OpenSSL reads it as Latin-1
    0x16: "latin-1",  # IA5String
    0x1A: "latin-1",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}


def _rfc2253(name: x509.Name) -> str:
    """``name`` as ``openssl x509 -nameopt RFC2253`` prints it.

    Walks the DER rather than ``Name.rfc4514_string()``: OpenSSL reverses every attribute (also
    inside a multi-valued RDN), escapes each non-ASCII UTF-8 byte as ``\\XX`` and dumps unknown
    types as ``#<DER hex>``, none of which the RFC 4514 rendering does.
    """
    ((_, rdns, _),) = _der_elements(name.public_bytes())
    entries: list[tuple[int, str]] = []  # (RDN index, "type=value")
    for index, (_, rdn, _) in enumerate(_der_elements(rdns)):
        for _, attribute, _ in _der_elements(rdn):
            (_, oid, _), (tag, content, element) = _der_elements(attribute)
            dotted = _oid_text(oid)
            short = _OPENSSL_SHORT_NAMES.get(dotted)
            value = _string_value(tag, content) if short else None
            if value is None:
                value = "#" + element.hex().upper()
            entries.append((index, f"{short or dotted}={value}"))
    entries.reverse()
    text = ""
    for position, (index, entry) in enumerate(entries):
        if position:
            text += "+" if index == entries[position - 1][0] else ","
        text += entry
    return text


def _der_elements(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(tag, content, whole element) of each DER element in ``data`` (single-byte tags)."""
    position = 0
    while position < len(data):
        start, tag, length = position, data[position], data[position + 1]
        position += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[position : position + size], "big")
            position += size
        yield tag, data[position : position + length], data[start : position + length]
        position += length


def _oid_text(content: bytes) -> str:
    arcs, value = [], 0
    for byte in content:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def _string_value(tag: int, content: bytes) -> str | None:
    """The escaped text of a string value; None for what OpenSSL dumps as hex instead."""
    codec = _STRING_CODECS.get(tag)
    if codec is None:
        return None
    try:
        raw = content if codec == "utf-8" else content.decode(codec).encode()
    except UnicodeDecodeError:
        return None
    text = ""
    for position, byte in enumerate(raw):
        char = chr(byte)
        if byte < 0x20 or byte >= 0x7F:
            text += f"\\{byte:02X}"
        elif char in ',+"\\<>;' or (
            (char in "# " and position == 0) or (char == " " and position == len(raw) - 1)
        ):
            text += "\\" + char
        else:
            text += char
    return text


# --- Host names ---------------------------------------------------------------------------------


def hostname_matches(cert: x509.Certificate, host: str) -> bool:
    """RFC 6125: does ``cert`` name ``host``?

    An IP host matches only IP SANs. A DNS host matches a DNS SAN exactly or through a wildcard
    that is the whole left-most label; the subject CN counts only without any SAN extension.
    """
    host = host.strip().removeprefix("[").removesuffix("]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        extension = None
    except ValueError:  # malformed extensions name nothing
        return False
    if address is not None:
        return extension is not None and address in extension.value.get_values_for_type(
            x509.IPAddress
        )
    reference = _a_label(host)
    if reference is None or "*" in reference:
        return False
    if extension is not None:
        patterns = extension.value.get_values_for_type(x509.DNSName)
    else:
        patterns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return any(_dns_matches(pattern, reference) for pattern in patterns)


def _a_label(host: str) -> str | None:
    """Lower-case ASCII form of ``host`` (IDN -> A-labels), without a trailing dot."""
    host = host.rstrip(".").lower()
    if not host or host.isascii():
        return host or None
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None


def _dns_matches(pattern: str, reference: str) -> bool:
    wildcard = pattern.startswith("*.")
    suffix = _a_label(pattern[2:] if wildcard else pattern)
    if suffix is None or "*" in suffix:  # partial or non-left-most wildcards match nothing
        return False
    if not wildcard:
        return suffix == reference
    # The wildcard stands for exactly one non-empty label, never for a top-level domain.
    label, dot, rest = reference.partition(".")
    return bool(label and dot) and "." in suffix and rest == suffix


# --- Chain verdict ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainVerdict:
    trusted: bool
    reason: str | None  # short human text when not trusted


class TrustRoots(tuple[x509.Certificate, ...]):
    """Trusted root certificates, with cryptography's ``Store`` of them built once: building
    it for a system store of ~150 roots costs more than the verification itself."""

    @cached_property
    def store(self) -> verification.Store:
        return verification.Store(list(self))


def verify_chain(
    chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], at: datetime
) -> ChainVerdict:
    """Is ``chain[0]`` (the leaf, ``chain[1:]`` untrusted intermediates) trusted by ``roots`` at
    ``at``? The host name is judged separately, so the chain is verified for a name the leaf
    itself carries."""
    if not chain:
        return ChainVerdict(False, "no certificate")
    leaf, intermediates = chain[0], list(chain[1:])
    at = at if at.tzinfo else at.replace(tzinfo=UTC)  # naive means UTC, as everywhere here
    verifier = _verifier(leaf, roots, at) if roots else None
    message = ""
    if verifier is not None:
        try:
            verifier.verify(leaf, intermediates)
            return ChainVerdict(True, None)
        except verification.VerificationError as exc:
            message = str(exc)
    no_san = bool(roots) and verifier is None
    return ChainVerdict(False, _failure_reason(chain, roots, at, message, no_san))


def _verifier(
    leaf: x509.Certificate, roots: Sequence[x509.Certificate], at: datetime
) -> verification.ServerVerifier | None:
    """A verifier for the first SAN of ``leaf`` usable as a subject (a wildcard label filled in)."""
    store = roots.store if isinstance(roots, TrustRoots) else verification.Store(list(roots))
    builder = verification.PolicyBuilder().store(store).time(at)
    try:
        names = _subject_alternative_names(leaf)
    except ValueError:
        return None
    for name in names:
        subject = name
        if isinstance(name, x509.DNSName):
            subject = x509.DNSName(re.sub(r"^\*\.", "wildcard.", name.value))
        try:
            return builder.build_server_verifier(subject)
        except (ValueError, TypeError):
            continue
    return None


# cryptography's wording -> OpenSSL's (or plainer) short reason.
_FAILURES = {
    "signature does not match": "certificate signature failure",
    "Forbidden signature algorithm": "weak or unsupported signature algorithm",
}


def _failure_reason(
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime,
    message: str,
    no_san: bool,
) -> str:
    """OpenSSL-like short text for a failed verification (``message`` is cryptography's)."""
    leaf = chain[0]
    if leaf.subject == leaf.issuer:
        return "self-signed certificate"
    if no_san:
        return "certificate has no subject alternative name"
    if "not valid at validation time" in message:
        for role, certs in (("", chain[:1]), ("intermediate ", chain[1:]), ("root ", roots)):
            for cert in certs:
                if at > cert.not_valid_after_utc:
                    return f"{role}certificate has expired"
                if at < cert.not_valid_before_utc:
                    return f"{role}certificate is not yet valid"
    if not message or "no interior errors" in message or "exceeds max depth" in message:
        if any(cert.subject == cert.issuer for cert in chain[1:]):
            return "self-signed certificate in certificate chain"
        return "unable to get local issuer certificate"
    for needle, reason in _FAILURES.items():
        if needle in message:
            return reason
    # Anything else: cryptography's own words, without its prefixes and certificate dump.
    message = re.sub(r"^(validation failed: )?(candidates exhausted: )?", "", message)
    return re.sub(r" \(encountered processing .*\)$", "", message, flags=re.S)
