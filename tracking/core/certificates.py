"""Loading X.509 certificates as they come: one PEM a user pasted, the DER chain a server sent,
a CA bundle. Pure: the network side lives in ``tracking.probes.tls``."""

from __future__ import annotations

import base64
import binascii
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning

from tracking.core.der import der_elements, serial_content
from tracking.core.errors import ErrorCode, ValidationError

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
        ((_, certificate, _),) = der_elements(der)
        _, tbs, _ = next(der_elements(certificate))
        serial = serial_content(tbs)
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


def subject_alternative_names(cert: x509.Certificate) -> list[x509.DNSName | x509.IPAddress]:
    """DNS and IP entries in certificate order; [] when there is no SAN extension. ValueError
    when the extensions are malformed."""
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [name for name in extension.value if isinstance(name, x509.DNSName | x509.IPAddress)]
