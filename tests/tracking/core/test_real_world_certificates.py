"""tracking.core.certificates over real-world certificates: every root of certifi's CA bundle.

Each certificate's SSL Details are compared, field by field, with what the ``openssl x509``
binary prints for it (README: SSL Details read as `openssl x509` prints them). certifi is
pinned in requirements.lock, so the corpus is deterministic.

Two ``openssl x509`` runs per certificate:

* ``-nameopt RFC2253`` for serial, fingerprint, dates, the SAN extension, the signature
  algorithm and the issuer DN exactly as the contract's "Issued By" fallback spells it;
* ``-nameopt sep_multiline,utf8,sname,...`` without any ``esc_*`` flag for the attribute values
  themselves: one RDN per line, certificate (DER) order, values as raw UTF-8, so commas, plus
  signs and non-ASCII letters (NetLock's Hungarian names, ...) need no unescaping.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning

from tests.support.openssl import OPENSSL, openssl_time, openssl_x509
from tracking.core import der
from tracking.core.certificates import load_der_chain, load_pem_certificate
from tracking.core.ssl_details import SslDetails, ssl_details

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="no openssl binary")

BUNDLE = Path(certifi.where())


# --- The corpus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleEntry:
    label: str  # position in the bundle and certifi's "# Label:" comment, for test ids
    pem: str


_LABEL = re.compile(r'^# Label: "(.*)"$')
_BEGIN, _END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def _bundle_entries(text: str) -> list[BundleEntry]:
    entries: list[BundleEntry] = []
    block: list[str] = []
    label = ""
    for line in text.splitlines():
        if match := _LABEL.match(line):
            label = match[1]
        elif line == _BEGIN or block:
            block.append(line)
            if line == _END:
                name = f"{len(entries):03d} {label or '(no label)'}"
                entries.append(BundleEntry(name, "\n".join(block) + "\n"))
                label, block = "", []
    return entries


BUNDLE_TEXT = BUNDLE.read_text("utf-8")
CORPUS = _bundle_entries(BUNDLE_TEXT)


def test_corpus_is_the_whole_bundle() -> None:
    assert len(CORPUS) == BUNDLE_TEXT.count(_BEGIN) >= 100
    assert len({entry.label for entry in CORPUS}) == len(CORPUS)


# --- What openssl prints ------------------------------------------------------------------------

# Everything but the signature algorithm line out of ``-text``.
_CERTOPT = ",".join(
    f"no_{part}"
    for part in (
        "header",
        "version",
        "serial",
        "subject",
        "issuer",
        "validity",
        "pubkey",
        "extensions",
        "sigdump",
        "aux",
    )
)
_MAIN_ARGS = (
    "-noout",
    "-serial",
    "-fingerprint",
    "-sha256",
    "-startdate",
    "-enddate",
    "-issuer",
    "-subject",
    "-nameopt",
    "RFC2253",
    "-ext",
    "subjectAltName",
    "-text",
    "-certopt",
    _CERTOPT,
)
# RFC2253's type names, dumps and UTF-8 conversion, but no escaping, one RDN per line, DER order.
_VALUES_ARGS = (
    "-noout",
    "-subject",
    "-issuer",
    "-nameopt",
    "sep_multiline,utf8,sname,dump_nostr,dump_unknown,dump_der",
)

# sep_multiline puts " + " between the attributes of a multi-valued RDN.
_MULTI_VALUED = re.compile(r" \+ (?=(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)=)")


@dataclass(frozen=True)
class Oracle:
    fields: dict[str, str]  # "serial", "sha256 Fingerprint", "notBefore", "issuer", ...
    signature_algorithm: str  # OpenSSL's long name, e.g. sha256WithRSAEncryption
    sans: list[str]  # e.g. ["DNS:example.com", "email:x@example.com", "IP Address:192.0.2.1"]
    subject: list[tuple[str, str]]  # (short type name, raw value), certificate order
    issuer: list[tuple[str, str]]


def _name_values(output: str) -> dict[str, list[tuple[str, str]]]:
    """``subject=`` / ``issuer=`` sections of a sep_multiline printout."""
    names: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in output.splitlines():
        if line.startswith("    "):
            for attribute in _MULTI_VALUED.split(line[4:]):
                kind, _, value = attribute.partition("=")
                current.append((kind, value))
        else:
            header, _, rest = line.partition("=")
            assert not rest, f"unexpected openssl line {line!r}"
            current = names.setdefault(header, [])
    return names


@cache
def oracle(pem: str) -> Oracle:
    main = openssl_x509(pem.encode("ascii"), *_MAIN_ARGS)
    fields: dict[str, str] = {}
    signature = ""
    sans: list[str] = []
    lines = iter(main.splitlines())
    for line in lines:
        if line.startswith("X509v3 Subject Alternative Name:"):
            sans = [name for name in next(lines).strip().split(", ") if name]
        elif match := re.fullmatch(r"\s+Signature Algorithm: (.+)", line):
            signature = signature or match[1]
        elif not line.startswith(" "):
            key, _, value = line.partition("=")
            fields[key] = value
    values = _name_values(openssl_x509(pem.encode("ascii"), *_VALUES_ARGS))
    return Oracle(fields, signature, sans, values["subject"], values["issuer"])


def _first(name: list[tuple[str, str]], kind: str) -> str | None:
    """The first non-empty value of ``kind`` (absent values are null, never "")."""
    return next((value for key, value in name if key == kind and value), None)


def _microsoft_name(openssl_name: str) -> str:
    """OpenSSL's signature algorithm name -> the contract's Microsoft-style name."""
    if match := re.fullmatch(r"(md5|sha\d+)WithRSAEncryption", openssl_name):
        return f"{match[1]}RSA"
    if match := re.fullmatch(r"ecdsa-with-SHA(\d+)", openssl_name):
        return f"sha{match[1]}ECDSA"
    return {"rsassaPss": "RSASSA-PSS", "ED25519": "ED25519", "ED448": "ED448"}.get(
        openssl_name, openssl_name
    )


def _san_value(name: str) -> str | None:
    """A DNS name or IP address of openssl's SAN printout, as printed; None for other kinds."""
    kind, _, value = name.partition(":")
    return value if kind in ("DNS", "IP Address") else None


def expected_details(item: Oracle) -> dict[str, object]:
    subject, issuer = item.subject, item.issuer
    location = [_first(subject, kind) for kind in ("L", "ST", "C")]
    sans = [_san_value(name) for name in item.sans]
    return {
        "common_name": _first(subject, "CN"),
        "valid_from": openssl_time(item.fields["notBefore"]),
        "valid_until": openssl_time(item.fields["notAfter"]),
        "issued_by": _first(issuer, "CN") or _first(issuer, "O") or item.fields["issuer"],
        "organization": _first(subject, "O"),
        "organizational_unit": _first(subject, "OU"),
        "location": ", ".join(part for part in location if part) or None,
        "serial_number": item.fields["serial"],
        "signature_algorithm": _microsoft_name(item.signature_algorithm),
        "subject_alternative_names": tuple(san for san in sans if san is not None),
        "fingerprint_sha256": item.fields["sha256 Fingerprint"],
    }


def _ours(details: SslDetails) -> dict[str, object]:
    return {field: getattr(details, field) for field in SslDetails.__dataclass_fields__}


# --- The comparison -----------------------------------------------------------------------------

_IDS = [entry.label for entry in CORPUS]


def _load(pem: str) -> x509.Certificate:
    """``load_pem_certificate``, deaf to cryptography's zero-serial warning, which
    ``test_load_pem_certificate_is_quiet`` judges on its own."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "Parsed a serial number which wasn't positive", CryptographyDeprecationWarning
        )
        return load_pem_certificate(pem)


@pytest.mark.parametrize("entry", CORPUS, ids=_IDS)
def test_ssl_details_match_openssl(entry: BundleEntry) -> None:
    details = ssl_details(_load(entry.pem))
    assert _ours(details) == expected_details(oracle(entry.pem))


@pytest.mark.parametrize("entry", CORPUS, ids=_IDS)
def test_rfc2253_names_match_openssl(entry: BundleEntry) -> None:
    """The "Issued By" fallback renderer, on every real-world subject and issuer DN (the
    bundle's issuers all have a CN or an O, so the fallback itself is never shown)."""
    certificate = _load(entry.pem)
    fields = oracle(entry.pem).fields
    assert der.rfc2253(certificate.issuer) == fields["issuer"]
    assert der.rfc2253(certificate.subject) == fields["subject"]


@pytest.mark.parametrize("entry", CORPUS, ids=_IDS)
def test_load_pem_certificate_is_quiet(entry: BundleEntry) -> None:
    """Roots people trust load without warnings, as ``load_pem_bundle`` loads them: some
    (Go Daddy / Starfield G2, SECOM RootCA2, HARICA 2015) have serial 0, which cryptography
    warns about now and means to refuse in a future release."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        certificate = load_pem_certificate(entry.pem)
        # and as a server's chain (DER), the way a refresh loads it
        der = certificate.public_bytes(serialization.Encoding.DER)
        assert load_der_chain([der]) == (certificate,)
