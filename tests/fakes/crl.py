"""Certificate revocation lists for tests: by ``cryptography``, by ``openssl ca -gencrl``, huge
ones and ones signed by the wrong key; plus the OpenSSL CA database (index.txt) both OpenSSL
tools read. Serve a CRL with :class:`tests.fakes.http_receiver.HttpReceiver`::

    crl = make_crl(ca.intermediate, {leaf.cert.serial_number: Revocation()})
    url = receiver.serve_bytes("/int.crl", crl_der(crl), CRL_CONTENT_TYPE)
    leaf = ca.leaf("a.test", crl_urls=[url])
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.fakes import pki

CRL_CONTENT_TYPE = "application/pkix-crl"
LARGE_CRL_SIZE = 10 * 1024 * 1024

# OpenSSL's names of the CRL reasons (index.txt, ``openssl ca -revoke -crl_reason``).
OPENSSL_REASONS = {
    x509.ReasonFlags.unspecified: "unspecified",
    x509.ReasonFlags.key_compromise: "keyCompromise",
    x509.ReasonFlags.ca_compromise: "CACompromise",
    x509.ReasonFlags.affiliation_changed: "affiliationChanged",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessationOfOperation",
    x509.ReasonFlags.certificate_hold: "certificateHold",
    x509.ReasonFlags.remove_from_crl: "removeFromCRL",
}


@dataclass(frozen=True)
class Revocation:
    """When and why a certificate was revoked (``reason`` None: no reason code)."""

    at: dt.datetime = pki.NOW - dt.timedelta(days=2)
    reason: x509.ReasonFlags | None = x509.ReasonFlags.key_compromise


def make_crl(
    issuer: pki.Issued,
    revoked: Mapping[int, Revocation],
    *,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    number: int = 1,
    signer_key: pki.PrivateKey | None = None,
    hash_alg: hashes.HashAlgorithm | None = None,
) -> x509.CertificateRevocationList:
    """A CRL in ``issuer``'s name listing ``revoked`` (serial -> :class:`Revocation`).

    thisUpdate defaults to an hour ago, nextUpdate to 7 days after it; ``signer_key`` signs in
    the issuer's name with another key (a CRL whose signature does not verify).
    """
    this_update = this_update or pki.NOW - dt.timedelta(hours=1)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(this_update)
        .next_update(next_update or this_update + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    for serial, revocation in revoked.items():
        entry = x509.RevokedCertificateBuilder().serial_number(serial)
        entry = entry.revocation_date(revocation.at)
        if revocation.reason is not None:
            entry = entry.add_extension(x509.CRLReason(revocation.reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    signer = signer_key or issuer.key
    algorithm = None if _is_ed(signer) else hash_alg or hashes.SHA256()
    return builder.sign(signer, algorithm)  # type: ignore[arg-type]


def crl_der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


def large_crl(
    issuer: pki.Issued,
    revoked: Mapping[int, Revocation],
    *,
    size: int = LARGE_CRL_SIZE,
    **kwargs: object,
) -> bytes:
    """The DER of a CRL of at least ``size`` bytes: ``revoked`` plus filler entries (serials
    from 2**120 up, no reason). Built at the DER level, as the builder is quadratic."""
    small = make_crl(issuer, revoked or {2**119: Revocation()}, **kwargs)  # type: ignore[arg-type]
    tbs = pki._der_elements(pki._der_content(small.tbs_certlist_bytes))
    # TBSCertList: version, signature, issuer, thisUpdate, nextUpdate, revokedCertificates, [0]
    entries = pki._der_content(tbs[5])
    date = pki._der(0x17, pki.NOW.strftime("%y%m%d%H%M%SZ").encode())
    filler, serial = [entries], 2**120
    total = len(entries)
    while total < size:
        entry = pki._der(0x30, pki._der(0x02, serial.to_bytes(16, "big")) + date)
        filler.append(entry)
        total += len(entry)
        serial += 1
    tbs[5] = pki._der(0x30, b"".join(filler))
    tbs_der = pki._der(0x30, b"".join(tbs))
    signer = kwargs.get("signer_key") or issuer.key
    signature_algorithm = pki._der_elements(pki._der_content(crl_der(small)))[1]
    return pki._der(
        0x30, tbs_der + signature_algorithm + pki._der(0x03, b"\x00" + _sign(signer, tbs_der))
    )


def _sign(signer: object, data: bytes) -> bytes:
    if isinstance(signer, rsa.RSAPrivateKey):
        return signer.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        return signer.sign(data, ec.ECDSA(hashes.SHA256()))
    return signer.sign(data)  # type: ignore[attr-defined, no-any-return]


def _is_ed(key: object) -> bool:
    return not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)


# -- OpenSSL's CA database and `openssl ca -gencrl` ----------------------------------------------


def _openssl_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%y%m%d%H%M%SZ")


def openssl_index(
    good: Iterable[x509.Certificate], revoked: Mapping[x509.Certificate, Revocation]
) -> str:
    """index.txt for ``openssl ocsp -index`` and ``openssl ca``: V lines for ``good``, R lines
    (with time and reason) for ``revoked``. Certificates in neither are unknown to it."""
    lines = []
    for cert in good:
        lines.append(_index_line("V", cert, ""))
    for cert, revocation in revoked.items():
        when = _openssl_time(revocation.at)
        if revocation.reason is not None:
            when += f",{OPENSSL_REASONS[revocation.reason]}"
        lines.append(_index_line("R", cert, when))
    return "".join(lines)


def _index_line(status: str, cert: x509.Certificate, revoked: str) -> str:
    serial = f"{cert.serial_number:X}"
    serial = serial.zfill(len(serial) + len(serial) % 2)
    subject = "/" + "/".join(
        f"{attribute.rfc4514_attribute_name}={attribute.value!s}" for attribute in cert.subject
    )
    expiry = _openssl_time(cert.not_valid_after_utc)
    return f"{status}\t{expiry}\t{revoked}\t{serial}\tunknown\t{subject}\n"


def write_ca_files(directory: Path, issuer: pki.Issued, index: str) -> None:
    """issuer.crt, issuer.key, index.txt (+ .attr) and crlnumber in ``directory``."""
    (directory / "issuer.crt").write_text(issuer.pem)
    (directory / "issuer.key").write_bytes(issuer.key_pem)
    (directory / "index.txt").write_text(index)
    (directory / "index.txt.attr").write_text("unique_subject = no\n")
    (directory / "crlnumber").write_text("1000\n")


def openssl_crl(
    issuer: pki.Issued,
    revoked: Mapping[x509.Certificate, Revocation],
    *,
    days: int = 7,
) -> x509.CertificateRevocationList:
    """A CRL made by ``openssl ca -gencrl`` from an index listing ``revoked``."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl command is not installed"
    with tempfile.TemporaryDirectory(prefix="dstrack-crl-") as tmp:
        directory = Path(tmp)
        write_ca_files(directory, issuer, openssl_index((), revoked))
        (directory / "ca.cnf").write_text(
            "[ca]\ndefault_ca = test\n[test]\n"
            f"database = {directory}/index.txt\ncrlnumber = {directory}/crlnumber\n"
            f"certificate = {directory}/issuer.crt\nprivate_key = {directory}/issuer.key\n"
            "default_md = sha256\ncrl_extensions = crl_ext\n"
            "[crl_ext]\nauthorityKeyIdentifier = keyid:always\n"
        )
        subprocess.run(
            [
                openssl,
                "ca",
                "-gencrl",
                "-batch",
                "-config",
                str(directory / "ca.cnf"),
                "-crldays",
                str(days),
                "-out",
                str(directory / "crl.pem"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return x509.load_pem_x509_crl((directory / "crl.pem").read_bytes())
