"""Certificates for tests, generated with ``cryptography``: CAs, intermediates and leaves.

Every knob a test needs is a keyword argument of :func:`issue`; keys are cached per kind
because RSA key generation is the slow part.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

KeyKind = Literal["rsa", "rsa1024", "ec256", "ec384", "ed25519"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@cache
def key(kind: KeyKind = "rsa", slot: int = 0) -> PrivateKey:
    """A private key of the given kind; ``slot`` gives distinct keys of the same kind."""
    del slot
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "rsa1024":
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    if kind == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


def name(
    cn: str | None = None,
    *,
    o: str | None = None,
    ou: str | None = None,
    l: str | None = None,  # noqa: E741 - the X.509 attribute is called L
    st: str | None = None,
    c: str | None = None,
) -> x509.Name:
    parts = [
        (NameOID.COUNTRY_NAME, c),
        (NameOID.STATE_OR_PROVINCE_NAME, st),
        (NameOID.LOCALITY_NAME, l),
        (NameOID.ORGANIZATION_NAME, o),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
        (NameOID.COMMON_NAME, cn),
    ]
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts if value is not None])


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def issue(
    subject: x509.Name,
    *,
    issuer: Issued | None = None,
    key_kind: KeyKind = "rsa",
    key_slot: int = 0,
    hash_alg: hashes.HashAlgorithm | None = None,
    pss: bool = False,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 90,
    serial: int | None = None,
    ca: bool = False,
    path_length: int | None = None,
    extended_key_usages: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.SERVER_AUTH,),
    ocsp_urls: Sequence[str] = (),
    ca_issuers_urls: Sequence[str] = (),
    crl_urls: Sequence[str] = (),
    ocsp_no_check: bool = False,
) -> Issued:
    """A certificate for ``subject``, signed by ``issuer`` (self-signed when None).

    ``extended_key_usages`` applies to non-CA certificates (``()`` leaves the extension out);
    ``ocsp_urls``/``ca_issuers_urls`` make an Authority Information Access extension,
    ``crl_urls`` a CRL Distribution Points one, ``ocsp_no_check`` the id-pkix-ocsp-nocheck
    extension a delegated OCSP responder carries.
    """
    private_key = key(key_kind, key_slot)
    signer = issuer.key if issuer else private_key
    issuer_name = issuer.cert.subject if issuer else subject
    not_before = not_before or NOW - dt.timedelta(days=1)
    not_after = not_after or not_before + dt.timedelta(days=days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(private_key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False
        )
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    elif extended_key_usages:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usages)), critical=False
        )
    builder = _revocation_extensions(
        builder, ocsp_urls, ca_issuers_urls, crl_urls, ocsp_no_check=ocsp_no_check
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        cert = builder.sign(signer, None)
    elif pss and isinstance(signer, rsa.RSAPrivateKey):
        algorithm = hash_alg or hashes.SHA256()
        cert = builder.sign(
            signer,
            algorithm,
            rsa_padding=padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size),
        )
    else:
        cert = builder.sign(signer, hash_alg or hashes.SHA256())
    return Issued(cert=cert, key=private_key)


def _revocation_extensions(
    builder: x509.CertificateBuilder,
    ocsp_urls: Sequence[str],
    ca_issuers_urls: Sequence[str],
    crl_urls: Sequence[str],
    *,
    ocsp_no_check: bool,
) -> x509.CertificateBuilder:
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u)
        )
        for u in ocsp_urls
    ] + [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(u)
        )
        for u in ca_issuers_urls
    ]
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if crl_urls:
        points = [
            x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None)
            for u in crl_urls
        ]
        builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
    if ocsp_no_check:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    return builder


@dataclass(frozen=True)
class Chain:
    """A root, an intermediate signed by it, and helpers to issue leaves under them."""

    root: Issued
    intermediate: Issued

    def leaf(self, cn: str, **kwargs: object) -> Issued:
        kwargs.setdefault("dns_names", [cn])
        return issue(name(cn), issuer=self.intermediate, key_slot=1, **kwargs)  # type: ignore[arg-type]

    def ocsp_responder(self, cn: str = "dstrack Test OCSP Responder", **kwargs: object) -> Issued:
        """A delegated OCSP responder certificate (EKU id-kp-OCSPSigning, ocsp-nocheck) issued
        by the intermediate, so it may sign answers about the intermediate's leaves."""
        kwargs.setdefault("key_slot", 20)
        kwargs.setdefault("ocsp_no_check", True)
        return issue(
            name(cn),
            issuer=self.intermediate,
            extended_key_usages=[ExtendedKeyUsageOID.OCSP_SIGNING],
            **kwargs,  # type: ignore[arg-type]
        )


@cache
def test_ca(label: str = "dstrack Test") -> Chain:
    root = issue(name(f"{label} Root CA", o=label), ca=True, days=3650, key_slot=2)
    intermediate = issue(
        name(f"{label} Intermediate CA", o=label),
        issuer=root,
        ca=True,
        path_length=0,
        days=1825,
        key_slot=3,
    )
    return Chain(root=root, intermediate=intermediate)


# --- Certificates CertificateBuilder refuses to make ------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _der_elements(content: bytes) -> list[bytes]:
    """The whole DER elements (tag, length, content) of a constructed value's content."""
    elements, position = [], 0
    while position < len(content):
        start, length = position, content[position + 1]
        position += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(content[position : position + size], "big")
            position += size
        position += length
        elements.append(content[start:position])
    return elements


def _der_content(element: bytes) -> bytes:
    length = element[1]
    header = 2 + (length & 0x7F if length & 0x80 else 0)
    return element[header:]


def _oid_der(dotted: str) -> bytes:
    first, second, *rest = (int(arc) for arc in dotted.split("."))
    body = b""
    for arc in (40 * first + second, *rest):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.insert(0, 0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(chunk)
    return _der(0x06, body)


def forge(
    cert: x509.Certificate,
    signer: PrivateKey,
    *,
    hash_alg: hashes.HashAlgorithm | None = None,
    signature_oid: str | None = None,
    serial: int | None = None,
) -> x509.Certificate:
    """``cert`` with its TBS edited at the DER level and signed again by ``signer``.

    For what ``CertificateBuilder`` refuses: SHA-1 / MD5 signatures (``hash_alg`` with the
    matching ``signature_oid``, e.g. ``"1.2.840.113549.1.1.5"`` for sha1WithRSAEncryption), an
    unknown signature OID, a serial of 0 or a negative one.
    """
    tbs = _der_elements(_der_content(cert.tbs_certificate_bytes))
    # TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject, ...
    if serial is not None:
        size = (serial.bit_length() + 8) // 8
        tbs[1] = _der(0x02, serial.to_bytes(size, "big", signed=True))
    if signature_oid is not None:
        parameters = _der(0x05, b"") if isinstance(signer, rsa.RSAPrivateKey) else b""
        tbs[2] = _der(0x30, _oid_der(signature_oid) + parameters)
    tbs_der = _der(0x30, b"".join(tbs))
    algorithm = hash_alg or hashes.SHA256()
    if isinstance(signer, rsa.RSAPrivateKey):
        signature = signer.sign(tbs_der, padding.PKCS1v15(), algorithm)
    elif isinstance(signer, ec.EllipticCurvePrivateKey):
        signature = signer.sign(tbs_der, ec.ECDSA(algorithm))
    else:
        signature = signer.sign(tbs_der)
    der = _der(0x30, tbs_der + tbs[2] + _der(0x03, b"\x00" + signature))
    with warnings.catch_warnings():  # cryptography deprecates serials <= 0, still in the wild
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate(der)
