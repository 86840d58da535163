"""tracking.core.certificates: SSL Details, host names and chain verdicts over generated
certificates.

Every expected value is spelled out; ``test_openssl_oracle`` also checks the decoding against
what the ``openssl x509`` binary prints for the same certificates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from collections.abc import Callable
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from models import SslDetailsRecord
from tests.fakes.pki import NOW, Issued, forge, issue, key, name
from tests.fakes.pki import test_ca as make_ca  # not collected as a test
from tests.support.openssl import OPENSSL, openssl_sans, openssl_x509
from tests.support.openssl import openssl_time as _openssl_time
from tracking.core import der
from tracking.core.certificates import chain_to_pem, load_pem_bundle, load_pem_certificate
from tracking.core.errors import ErrorCode, ProbeError, ValidationError
from tracking.core.ssl_details import (
    details_changes,
    from_stored,
    ssl_details,
    stored_values,
)
from tracking.core.verdicts import ChainVerdict, hostname_matches, verify_chain

DAY = dt.timedelta(days=1)
CA = make_ca()
OTHER_CA = make_ca("Other")


# --- Fixtures -----------------------------------------------------------------------------------


def _built(
    subject: x509.Name,
    sans: list[x509.GeneralName] | None = None,
    signer: object = None,
) -> x509.Certificate:
    """A self-signed certificate built by hand, for what ``issue()`` cannot express."""
    private_key = signer or key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())  # type: ignore[attr-defined]
        .serial_number(0x1234)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algorithm = None if isinstance(private_key, ed448.Ed448PrivateKey) else hashes.SHA256()
    return builder.sign(private_key, algorithm)  # type: ignore[arg-type]


def _ca(subject: x509.Name, slot: int) -> Issued:
    return issue(subject, ca=True, days=3650, key_slot=slot)


# A DN that exercises OpenSSL's RFC 2253 escaping: specials, leading '#' and spaces, non-ASCII.
_ESCAPES_DN = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, 'Zürich, "x" +;<>\\=#a'),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, " #lead trail "),
    ]
)
_ESCAPES_TEXT = 'OU=\\ #lead trail\\ ,L=Z\\C3\\BCrich\\, \\"x\\" \\+\\;\\<\\>\\\\=#a,C=DE'

# Multi-valued RDN, string types other than UTF8String, e-mail and an OID OpenSSL does not know.
_EXOTIC_DN = x509.Name(
    [
        x509.RelativeDistinguishedName(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CH"),
                x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Vaud"),
            ]
        ),
        x509.RelativeDistinguishedName(
            [x509.NameAttribute(NameOID.LOCALITY_NAME, "Ωmega", _type=_ASN1Type.BMPString)]
        ),
        x509.RelativeDistinguishedName(
            [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "tab\there")]
        ),
        x509.RelativeDistinguishedName(
            [x509.NameAttribute(NameOID.EMAIL_ADDRESS, "pki@example.com")]
        ),
        x509.RelativeDistinguishedName([x509.NameAttribute(x509.ObjectIdentifier("1.2.3.4"), "v")]),
    ]
)
_EXOTIC_TEXT = (
    "1.2.3.4=#0C0176,emailAddress=pki@example.com,OU=tab\\09here,L=\\CE\\A9mega,ST=Vaud+C=CH"
)


def _forged(
    issued: Issued, signer: Issued, oid: x509.ObjectIdentifier, alg: hashes.HashAlgorithm
) -> x509.Certificate:
    """``issued`` re-signed by ``signer`` with an algorithm CertificateBuilder refuses."""
    return forge(issued.cert, signer.key, hash_alg=alg, signature_oid=oid.dotted_string)


def _self_forged(
    issued: Issued, oid: x509.ObjectIdentifier, alg: hashes.HashAlgorithm
) -> x509.Certificate:
    return forge(issued.cert, issued.key, hash_alg=alg, signature_oid=oid.dotted_string)


FIXTURES: dict[str, Callable[[], x509.Certificate]] = {
    "full-subject": lambda: (
        CA.leaf(
            "www.datto.com",
            dns_names=["*.datto.com", "datto.com"],
            serial=0x0ABC,
        ).cert
    ),
    "datto-like": lambda: (
        issue(
            name("www.datto.com", o="Datto, Inc.", ou="IT", l="Norwalk", st="Connecticut", c="US"),
            issuer=CA.intermediate,
            dns_names=["*.datto.com", "datto.com"],
            serial=0x80FF,
            key_slot=1,
        ).cert
    ),
    "no-cn": lambda: issue(name(o="Org Only", c="US"), issuer=CA.intermediate, key_slot=1).cert,
    "only-c": lambda: issue(name(c="US"), issuer=CA.intermediate, key_slot=1, serial=1).cert,
    "l-and-c": lambda: issue(name("x.example", l="Berlin", c="DE"), issuer=CA.intermediate).cert,
    "rsa-sha1": lambda: _forged(
        CA.leaf("sha1.example.com"),
        CA.intermediate,
        SignatureAlgorithmOID.RSA_WITH_SHA1,
        hashes.SHA1(),
    ),
    "rsa-md5": lambda: _forged(
        CA.leaf("md5.example.com"),
        CA.intermediate,
        SignatureAlgorithmOID.RSA_WITH_MD5,
        hashes.MD5(),
    ),
    "rsa-sha224": lambda: CA.leaf("sha224.example.com", hash_alg=hashes.SHA224()).cert,
    "rsa-sha384": lambda: CA.leaf("sha384.example.com", hash_alg=hashes.SHA384()).cert,
    "rsa-sha512": lambda: CA.leaf("sha512.example.com", hash_alg=hashes.SHA512()).cert,
    "rsa-pss": lambda: CA.leaf("pss.example.com", pss=True).cert,
    "ec-p256": lambda: issue(name("ec.example.com"), key_kind="ec256").cert,
    "ec-p384": lambda: (
        issue(name("ec.example.com"), key_kind="ec384", hash_alg=hashes.SHA384()).cert
    ),
    "ec-p384-sha512": lambda: (
        issue(name("ec.example.com"), key_kind="ec384", hash_alg=hashes.SHA512()).cert
    ),
    "ec-sha1": lambda: _self_forged(
        issue(name("ec.example.com"), key_kind="ec256"),
        SignatureAlgorithmOID.ECDSA_WITH_SHA1,
        hashes.SHA1(),
    ),
    "ed25519": lambda: issue(name("ed.example.com"), key_kind="ed25519").cert,
    "ed448": lambda: _built(name("ed448.example.com"), signer=ed448.Ed448PrivateKey.generate()),
    "unknown-signature-oid": lambda: forge(
        CA.leaf("odd.example.com").cert, CA.intermediate.key, signature_oid="1.2.3.4"
    ),
    "ip-sans": lambda: (
        CA.leaf(
            "ip.example.com", dns_names=[], ip_addresses=["192.0.2.10", "2001:0db8:0000::0001"]
        ).cert
    ),
    "mixed-sans": lambda: _built(
        name("mixed.example.com"),
        [
            x509.IPAddress(ipaddress.ip_address("198.51.100.7")),
            x509.DNSName("mixed.example.com"),
            x509.RFC822Name("admin@example.com"),
            x509.UniformResourceIdentifier("https://example.com/"),
            x509.IPAddress(ipaddress.ip_address("2001:db8::7")),
            x509.DNSName("*.mixed.example.com"),
        ],
    ),
    "expired": lambda: CA.leaf("old.example.com", not_before=NOW - 100 * DAY, days=10).cert,
    "not-yet-valid": lambda: CA.leaf("new.example.com", not_before=NOW + 10 * DAY).cert,
    "self-signed": lambda: (
        issue(name("self.example.com", o="Self"), dns_names=["self.example.com"], key_slot=6).cert
    ),
    "issuer-o-only": lambda: (
        issue(name("a.example.com"), issuer=_ca(name(o="Org Only CA", c="US"), 10), key_slot=1).cert
    ),
    "issuer-dn-only": lambda: (
        issue(
            name("b.example.com"),
            issuer=_ca(name(ou="PKI", l="Berlin", st="Berlin", c="DE"), 11),
            key_slot=1,
        ).cert
    ),
    "issuer-escapes": lambda: (
        issue(name("c.example.com"), issuer=_ca(_ESCAPES_DN, 12), key_slot=1).cert
    ),
    "issuer-exotic": lambda: (
        issue(name("d.example.com"), issuer=_ca(_EXOTIC_DN, 13), key_slot=1).cert
    ),
    "serial-leading-zero-nibble": lambda: CA.leaf("s.example.com", serial=0x0F).cert,
    "serial-high-bit": lambda: CA.leaf("s.example.com", serial=0xFF00FF).cert,
    "serial-zero": lambda: forge(CA.leaf("s.example.com").cert, CA.intermediate.key, serial=0),
    "serial-negative": lambda: forge(
        CA.leaf("s.example.com").cert, CA.intermediate.key, serial=-0x1234
    ),
    "serial-long": lambda: CA.leaf("s.example.com", serial=(1 << 158) + 0x0B).cert,
}


@cache
def cert(label: str) -> x509.Certificate:
    return FIXTURES[label]()


# --- ssl_details: exact values ------------------------------------------------------------------

EXPECTED: list[tuple[str, dict[str, object]]] = [
    (
        "datto-like",
        {
            "common_name": "www.datto.com",
            "issued_by": "dstrack Test Intermediate CA",
            "organization": "Datto, Inc.",
            "organizational_unit": "IT",
            "location": "Norwalk, Connecticut, US",
            "serial_number": "80FF",
            "signature_algorithm": "sha256RSA",
            "subject_alternative_names": ("*.datto.com", "datto.com"),
        },
    ),
    (
        "full-subject",
        {
            "common_name": "www.datto.com",
            "organization": None,
            "organizational_unit": None,
            "location": None,
            "serial_number": "0ABC",
        },
    ),
    ("no-cn", {"common_name": None, "organization": "Org Only", "location": "US"}),
    ("no-cn", {"subject_alternative_names": ()}),
    ("only-c", {"common_name": None, "organization": None, "location": "US"}),
    ("only-c", {"serial_number": "01"}),
    ("l-and-c", {"location": "Berlin, DE", "organizational_unit": None}),
    ("rsa-sha1", {"signature_algorithm": "sha1RSA"}),
    ("rsa-md5", {"signature_algorithm": "md5RSA"}),
    ("rsa-sha224", {"signature_algorithm": "sha224RSA"}),
    ("rsa-sha384", {"signature_algorithm": "sha384RSA"}),
    ("rsa-sha512", {"signature_algorithm": "sha512RSA"}),
    ("rsa-pss", {"signature_algorithm": "RSASSA-PSS"}),
    ("ec-p256", {"signature_algorithm": "sha256ECDSA", "issued_by": "ec.example.com"}),
    ("ec-p384", {"signature_algorithm": "sha384ECDSA"}),
    ("ec-p384-sha512", {"signature_algorithm": "sha512ECDSA"}),
    ("ec-sha1", {"signature_algorithm": "sha1ECDSA"}),
    ("ed25519", {"signature_algorithm": "ED25519"}),
    ("ed448", {"signature_algorithm": "ED448"}),
    ("unknown-signature-oid", {"signature_algorithm": "1.2.3.4"}),
    # IPv6 as openssl prints it: every group, uppercase, no "::".
    ("ip-sans", {"subject_alternative_names": ("192.0.2.10", "2001:DB8:0:0:0:0:0:1")}),
    (
        "mixed-sans",
        {
            "subject_alternative_names": (
                "198.51.100.7",
                "mixed.example.com",
                "2001:DB8:0:0:0:0:0:7",
                "*.mixed.example.com",
            )
        },
    ),
    (
        "expired",
        {
            "valid_from": NOW - 100 * DAY,
            "valid_until": NOW - 90 * DAY,
            "common_name": "old.example.com",
        },
    ),
    ("not-yet-valid", {"valid_from": NOW + 10 * DAY, "valid_until": NOW + 100 * DAY}),
    ("self-signed", {"issued_by": "self.example.com", "organization": "Self"}),
    ("issuer-o-only", {"issued_by": "Org Only CA"}),
    ("issuer-dn-only", {"issued_by": "OU=PKI,L=Berlin,ST=Berlin,C=DE"}),
    ("issuer-escapes", {"issued_by": _ESCAPES_TEXT}),
    ("issuer-exotic", {"issued_by": _EXOTIC_TEXT}),
    ("serial-leading-zero-nibble", {"serial_number": "0F"}),
    ("serial-high-bit", {"serial_number": "FF00FF"}),
    ("serial-zero", {"serial_number": "00"}),
    ("serial-negative", {"serial_number": "-1234"}),
    ("serial-long", {"serial_number": "40" + "00" * 18 + "0B"}),
]


@pytest.mark.parametrize(("label", "expected"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_ssl_details_fields(label: str, expected: dict[str, object]) -> None:
    details = ssl_details(cert(label))
    assert {field: getattr(details, field) for field in expected} == expected


def test_dates_are_utc_aware() -> None:
    details = ssl_details(cert("expired"))
    assert details.valid_from.tzinfo is dt.UTC
    assert details.valid_until.tzinfo is dt.UTC


def test_fingerprint_format() -> None:
    details = ssl_details(cert("datto-like"))
    digest = cert("datto-like").fingerprint(hashes.SHA256())
    assert details.fingerprint_sha256 == ":".join(f"{b:02X}" for b in digest)
    assert len(details.fingerprint_sha256) == 32 * 3 - 1


def test_subject_alternative_names_joined() -> None:
    assert ssl_details(cert("datto-like")).subject_alternative_names_joined == (
        "*.datto.com | datto.com"
    )
    assert ssl_details(cert("no-cn")).subject_alternative_names_joined == ""


def test_empty_issuer_is_ssl_details_unavailable() -> None:
    anonymous_ca = issue(x509.Name([]), ca=True, key_slot=14)
    leaf = issue(name("e.example.com"), issuer=anonymous_ca, key_slot=1)
    with pytest.raises(ProbeError) as info:
        ssl_details(leaf.cert)
    assert info.value.code is ErrorCode.SSL_DETAILS_UNAVAILABLE
    assert info.value.message == "Unable to retrieve SSL Details"


def test_empty_attribute_values_are_absent() -> None:
    with pytest.warns(UserWarning, match="length"):  # an empty CN breaks RFC 5280's bounds
        empty_cn = x509.NameAttribute(NameOID.COMMON_NAME, "", _validate=False)
    subject = x509.Name(
        [
            empty_cn,
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ""),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    certificate = _built(subject)
    with pytest.warns(UserWarning, match="length"):  # cryptography warns on parsing it too
        details = ssl_details(certificate)
    assert (details.common_name, details.organization, details.location) == (None, None, "US")
    assert details.issued_by == "C=US,O=,CN="  # DER order reversed, as openssl prints it


# --- openssl oracle -----------------------------------------------------------------------------


def _openssl(certificate: x509.Certificate) -> dict[str, str]:
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    args = ["-noout", "-serial", "-fingerprint", "-sha256", "-startdate", "-enddate"]
    args += ["-issuer", "-subject", "-nameopt", "RFC2253"]
    output = openssl_x509(pem, *args)
    fields = dict(line.split("=", 1) for line in output.splitlines())
    return fields


@pytest.mark.skipif(OPENSSL is None, reason="no openssl binary")
@pytest.mark.parametrize("label", sorted(FIXTURES))
def test_openssl_oracle(label: str) -> None:
    certificate = cert(label)
    oracle = _openssl(certificate)
    details = ssl_details(certificate)
    assert details.serial_number == oracle["serial"]
    assert details.fingerprint_sha256 == oracle["sha256 Fingerprint"]
    assert details.valid_from == _openssl_time(oracle["notBefore"])
    assert details.valid_until == _openssl_time(oracle["notAfter"])
    assert der.rfc2253(certificate.issuer) == oracle["issuer"]
    assert der.rfc2253(certificate.subject) == oracle["subject"]
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    assert list(details.subject_alternative_names) == openssl_sans(pem)
    issuer = certificate.issuer
    if not issuer.get_attributes_for_oid(NameOID.COMMON_NAME) and not (
        issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ):
        assert details.issued_by == oracle["issuer"]


# --- details_changes, stored values -------------------------------------------------------


def test_details_changes_equal_is_empty() -> None:
    details = ssl_details(cert("datto-like"))
    assert details_changes(details, details) == []


def test_details_changes_first_retrieval_lists_present_fields() -> None:
    details = ssl_details(cert("no-cn"))
    changes = [(c.label, c.old, c.new) for c in details_changes(None, details)]
    assert [label for label, _, _ in changes] == [
        "Valid From",
        "Valid Until",
        "Issued By",
        "Organization",
        "Location",
        "Serial Number",
        "Signature Algorithm",
        "SHA-256 Fingerprint",
    ]
    assert all(old is None for _, old, _ in changes)
    assert ("Organization", None, "Org Only") in changes


def test_details_changes_renewal() -> None:
    old = ssl_details(cert("datto-like"))
    new = dataclasses.replace(
        old,
        valid_until=dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        serial_number="0ABC",
        organizational_unit=None,
        subject_alternative_names=("datto.com",),
        fingerprint_sha256="AA:BB",
    )
    assert [(c.field, c.label, c.old, c.new) for c in details_changes(old, new)] == [
        ("valid_until", "Valid Until", old.valid_until.isoformat(), "2031-01-02T03:04:05+00:00"),
        ("organizational_unit", "Organizational Unit", "IT", None),
        ("serial_number", "Serial Number", "80FF", "0ABC"),
        (
            "subject_alternative_names",
            "Subject Alternative Names",
            "*.datto.com | datto.com",
            "datto.com",
        ),
        ("fingerprint_sha256", "SHA-256 Fingerprint", old.fingerprint_sha256, "AA:BB"),
    ]


def test_details_changes_same_instant_is_no_change() -> None:
    details = ssl_details(cert("datto-like"))
    stored = dataclasses.replace(
        details,
        valid_from=details.valid_from.replace(tzinfo=None),
        valid_until=details.valid_until.astimezone(dt.timezone(dt.timedelta(hours=2))),
    )
    assert details_changes(stored, details) == []


def test_stored_values_have_a_column_per_field_and_read_back() -> None:
    details = ssl_details(cert("datto-like"))
    values = stored_values(details)
    assert values["subject_alternative_names"] == ["*.datto.com", "datto.com"]
    assert set(values) <= {column.name for column in SslDetailsRecord.__table__.columns}
    record = SslDetailsRecord(device_id=1, chain_pem="", retrieved_at=details.valid_from, **values)
    assert from_stored(record) == details


# --- hostname_matches ---------------------------------------------------------------------------

HOSTS: list[tuple[str, Callable[[], x509.Certificate], str, bool]] = []


def _host_case(label: str, make: Callable[[], x509.Certificate], cases: dict[str, bool]) -> None:
    HOSTS.extend((f"{label}:{host}", make, host, match) for host, match in cases.items())


_wildcard = cache(lambda: CA.leaf("*.example.com", dns_names=["*.example.com", "example.com"]).cert)
_host_case(
    "wildcard",
    _wildcard,
    {
        "a.example.com": True,
        "A.EXAMPLE.COM": True,
        "a.example.com.": True,
        "example.com": True,
        "a.b.example.com": False,
        ".example.com": False,
        "*.example.com": False,
        "example.org": False,
        "": False,
    },
)
_host_case(
    "wildcard-only",
    cache(lambda: CA.leaf("*.example.net", dns_names=["*.example.net"]).cert),
    {"example.net": False, "www.example.net": True},
)
_host_case(
    "bad-wildcards",
    cache(
        lambda: CA.leaf("x", dns_names=["f*.example.com", "*.com", "www.*.example.com", "*"]).cert
    ),
    {"foo.example.com": False, "x.com": False, "www.a.example.com": False, "x": False},
)
_host_case(
    "ips",
    lambda: cert("ip-sans"),
    {
        "192.0.2.10": True,
        "2001:DB8:0::1": True,
        "[2001:db8::1]": True,
        "192.0.2.11": False,
        "ip.example.com": False,
    },
)
_host_case(
    "ip-as-dns-san",
    cache(lambda: CA.leaf("192.0.2.10", dns_names=["192.0.2.10"]).cert),
    {"192.0.2.10": False},
)
_host_case(
    "cn-fallback",
    cache(lambda: issue(name("legacy.example.com"), issuer=CA.intermediate, key_slot=1).cert),
    {"legacy.example.com": True, "LEGACY.example.com": True, "other.example.com": False},
)
_host_case(
    "cn-ip-no-san",
    cache(lambda: issue(name("192.0.2.10"), issuer=CA.intermediate, key_slot=1).cert),
    {"192.0.2.10": False},
)
_host_case(
    "cn-ignored-with-san",
    cache(lambda: CA.leaf("cn.example.com", dns_names=["san.example.com"]).cert),
    {"cn.example.com": False, "san.example.com": True},
)
_host_case(
    "idn",
    cache(
        lambda: (
            CA.leaf(
                "xn--bcher-kva.example",
                dns_names=["xn--bcher-kva.example", "*.xn--bcher-kva.example"],
            ).cert
        )
    ),
    {
        "bücher.example": True,
        "BÜCHER.example": True,
        "xn--bcher-kva.example": True,
        "shop.bücher.example": True,
        "bucher.example": False,
    },
)
_host_case(
    "idn-cn-fallback",
    cache(lambda: issue(name("bücher.example"), issuer=CA.intermediate, key_slot=1).cert),
    {"xn--bcher-kva.example": True, "bücher.example": True},
)


@pytest.mark.parametrize(
    ("make", "host", "expected"), [case[1:] for case in HOSTS], ids=[case[0] for case in HOSTS]
)
def test_hostname_matches(make: Callable[[], x509.Certificate], host: str, expected: bool) -> None:
    assert hostname_matches(make(), host) is expected


# --- verify_chain -------------------------------------------------------------------------------


def _good() -> list[x509.Certificate]:
    return [CA.leaf("a.example.com").cert, CA.intermediate.cert]


def _expired_intermediate_chain() -> list[x509.Certificate]:
    old = issue(
        name("Old Intermediate CA"),
        issuer=CA.root,
        ca=True,
        path_length=0,
        not_before=NOW - 100 * DAY,
        days=10,
        key_slot=15,
    )
    leaf = issue(name("o.example.com"), issuer=old, dns_names=["o.example.com"], key_slot=1)
    return [leaf.cert, old.cert]


VERDICTS: list[
    tuple[
        str, Callable[[], list[x509.Certificate]], list[x509.Certificate], dt.datetime, ChainVerdict
    ]
] = [
    ("good", _good, [CA.root.cert], NOW, ChainVerdict(True, None)),
    (
        "good-root-sent-too",
        lambda: [*_good(), CA.root.cert],
        [CA.root.cert],
        NOW,
        ChainVerdict(True, None),
    ),
    (
        "wildcard-leaf",
        lambda: [_wildcard(), CA.intermediate.cert],
        [CA.root.cert],
        NOW,
        ChainVerdict(True, None),
    ),
    (
        "ip-only-leaf",
        lambda: [cert("ip-sans"), CA.intermediate.cert],
        [CA.root.cert],
        NOW,
        ChainVerdict(True, None),
    ),
    (
        "bundle-roots",
        _good,
        [OTHER_CA.root.cert, CA.root.cert],
        NOW,
        ChainVerdict(True, None),
    ),
    (
        "missing-intermediate",
        lambda: _good()[:1],
        [CA.root.cert],
        NOW,
        ChainVerdict(False, "unable to get local issuer certificate"),
    ),
    (
        "wrong-root",
        _good,
        [issue(name("Stranger Root"), ca=True, key_slot=16).cert],
        NOW,
        ChainVerdict(False, "unable to get local issuer certificate"),
    ),
    (
        "untrusted-root-sent",
        lambda: [*_good(), CA.root.cert],
        [issue(name("Stranger Root"), ca=True, key_slot=16).cert],
        NOW,
        ChainVerdict(False, "self-signed certificate in certificate chain"),
    ),
    (
        "no-roots",
        _good,
        [],
        NOW,
        ChainVerdict(False, "unable to get local issuer certificate"),
    ),
    (
        "expired-leaf",
        lambda: [cert("expired"), CA.intermediate.cert],
        [CA.root.cert],
        NOW,
        ChainVerdict(False, "certificate has expired"),
    ),
    (
        "not-yet-valid-leaf",
        lambda: [cert("not-yet-valid"), CA.intermediate.cert],
        [CA.root.cert],
        NOW,
        ChainVerdict(False, "certificate is not yet valid"),
    ),
    (
        "good-chain-judged-later",
        _good,
        [CA.root.cert],
        NOW + 200 * DAY,
        ChainVerdict(False, "certificate has expired"),
    ),
    (
        "expired-intermediate",
        _expired_intermediate_chain,
        [CA.root.cert],
        NOW,
        ChainVerdict(False, "intermediate certificate has expired"),
    ),
    (
        "self-signed",
        lambda: [cert("self-signed")],
        [CA.root.cert],
        NOW,
        ChainVerdict(False, "self-signed certificate"),
    ),
    (
        "self-signed-no-roots",
        lambda: [cert("self-signed")],
        [],
        NOW,
        ChainVerdict(False, "self-signed certificate"),
    ),
    (
        "no-san",
        lambda: [cert("no-cn"), CA.intermediate.cert],
        [CA.root.cert],
        NOW,
        ChainVerdict(False, "certificate has no subject alternative name"),
    ),
    (
        "bad-signature",
        lambda: [forge(CA.leaf("a.example.com").cert, key("rsa", 9)), CA.intermediate.cert],
        [CA.root.cert],
        NOW,
        ChainVerdict(False, "certificate signature failure"),
    ),
    (
        "sha1-leaf",
        lambda: [cert("rsa-sha1"), CA.intermediate.cert],
        [CA.root.cert],
        NOW,
        ChainVerdict(False, "weak or unsupported signature algorithm"),
    ),
    (
        "leaf-as-issuer",
        lambda: [
            issue(
                name("b.example.com"),
                issuer=CA.leaf("a.example.com"),
                dns_names=["b.example.com"],
                key_slot=8,
            ).cert,
            CA.leaf("a.example.com").cert,
            CA.intermediate.cert,
        ],
        [CA.root.cert],
        NOW,
        ChainVerdict(False, "basicConstraints.cA must be asserted in a CA certificate"),
    ),
    ("empty-chain", list, [CA.root.cert], NOW, ChainVerdict(False, "no certificate")),
]


@pytest.mark.parametrize(
    ("chain", "roots", "at", "expected"), [v[1:] for v in VERDICTS], ids=[v[0] for v in VERDICTS]
)
def test_verify_chain(
    chain: Callable[[], list[x509.Certificate]],
    roots: list[x509.Certificate],
    at: dt.datetime,
    expected: ChainVerdict,
) -> None:
    assert verify_chain(chain(), roots, at) == expected


def test_verify_chain_ignores_the_host_name() -> None:
    # The leaf is for a.example.com; the verdict must not depend on which host served it.
    assert verify_chain(_good(), [CA.root.cert], NOW).trusted


def test_verify_chain_accepts_naive_utc_time() -> None:
    assert verify_chain(_good(), [CA.root.cert], NOW.replace(tzinfo=None)).trusted


# --- PEM in and out -----------------------------------------------------------------------------


def test_load_pem_bundle_is_tolerant() -> None:
    first, second = CA.root, OTHER_CA.root
    broken = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    bundle = (
        "# Mozilla CA bundle, comments first\n"
        f"Root one\n========\n{first.pem}\n"
        f"{broken}"
        f"{CA.intermediate.key_pem.decode()}"
        f"\r\n{second.pem.replace(chr(10), chr(13) + chr(10))}trailing text\n"
    ).encode()
    assert load_pem_bundle(bundle) == [first.cert, second.cert]
    assert load_pem_bundle(b"") == []


def test_chain_to_pem_round_trips() -> None:
    chain = [*_good(), CA.root.cert]
    text = chain_to_pem(chain)
    assert text.count("-----BEGIN CERTIFICATE-----") == 3
    assert text.startswith("-----BEGIN CERTIFICATE-----\n") and text.endswith("-----\n")
    assert load_pem_bundle(text.encode()) == chain
    assert chain_to_pem([]) == ""


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("garbage", id="no-block"),
        pytest.param(CA.root.pem + CA.intermediate.pem, id="two-certificates"),
        pytest.param(CA.root.pem + CA.root.key_pem.decode(), id="with-private-key"),
        pytest.param(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", id="undecodable"
        ),
        pytest.param("x" * (64 * 1024 + 1), id="too-long"),
    ],
)
def test_load_pem_certificate_refuses(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        load_pem_certificate(text)
    assert (info.value.code, info.value.field) == (ErrorCode.INVALID_PEM, "sslSource")


def test_load_pem_certificate_ignores_surrounding_text() -> None:
    assert load_pem_certificate(f"Subject: test\n{CA.root.pem}\nbye") == CA.root.cert
