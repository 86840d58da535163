"""The CRL fakes: contents, signatures, openssl's CRL, a 10 MiB one, served over HTTP."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from tests.fakes import pki
from tests.fakes.clients import needs_openssl
from tests.fakes.crl import (
    CRL_CONTENT_TYPE,
    LARGE_CRL_SIZE,
    Revocation,
    crl_der,
    large_crl,
    make_crl,
    openssl_crl,
)
from tests.fakes.http_receiver import HttpReceiver

CA = pki.test_ca()
REVOKED = CA.leaf("revoked.crl.test")
ON_HOLD = CA.leaf("hold.crl.test")
GOOD = CA.leaf("good.crl.test")
REVOCATIONS = {
    REVOKED.cert: Revocation(at=pki.NOW - dt.timedelta(days=5)),
    ON_HOLD.cert: Revocation(reason=x509.ReasonFlags.certificate_hold),
}


def by_serial(revocations: dict[x509.Certificate, Revocation]) -> dict[int, Revocation]:
    return {cert.serial_number: r for cert, r in revocations.items()}


def reason(crl: x509.CertificateRevocationList, cert: x509.Certificate) -> x509.ReasonFlags:
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def test_make_crl_lists_serials_with_dates_and_reasons() -> None:
    this_update = pki.NOW - dt.timedelta(days=1)
    crl = make_crl(CA.intermediate, by_serial(REVOCATIONS), this_update=this_update, number=7)
    assert crl.issuer == CA.intermediate.cert.subject
    assert crl.last_update_utc == this_update
    assert crl.next_update_utc == this_update + dt.timedelta(days=7)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    assert crl.is_signature_valid(CA.intermediate.key.public_key())
    entry = crl.get_revoked_certificate_by_serial_number(REVOKED.cert.serial_number)
    assert entry is not None and entry.revocation_date_utc == pki.NOW - dt.timedelta(days=5)
    assert reason(crl, REVOKED.cert) is x509.ReasonFlags.key_compromise
    assert reason(crl, ON_HOLD.cert) is x509.ReasonFlags.certificate_hold
    assert crl.get_revoked_certificate_by_serial_number(GOOD.cert.serial_number) is None


def test_crl_signed_by_the_wrong_key_does_not_verify() -> None:
    crl = make_crl(CA.intermediate, by_serial(REVOCATIONS), signer_key=pki.key("rsa", 21))
    assert crl.issuer == CA.intermediate.cert.subject
    assert not crl.is_signature_valid(CA.intermediate.key.public_key())


def test_large_crl_is_ten_mib_valid_and_quick() -> None:
    started = time.monotonic()
    der = large_crl(CA.intermediate, by_serial(REVOCATIONS))
    elapsed = time.monotonic() - started
    assert LARGE_CRL_SIZE <= len(der) < LARGE_CRL_SIZE + 4096
    assert elapsed < 5
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(CA.intermediate.key.public_key())
    assert reason(crl, ON_HOLD.cert) is x509.ReasonFlags.certificate_hold
    assert crl.get_revoked_certificate_by_serial_number(GOOD.cert.serial_number) is None
    assert len(crl) > 250_000


def test_large_crl_by_the_wrong_key() -> None:
    der = large_crl(CA.intermediate, {}, size=100_000, signer_key=pki.key("rsa", 21))
    crl = x509.load_der_x509_crl(der)
    assert not crl.is_signature_valid(CA.intermediate.key.public_key())


@needs_openssl
def test_openssl_gencrl_lists_the_index() -> None:
    crl = openssl_crl(CA.intermediate, REVOCATIONS, days=3)
    assert crl.issuer == CA.intermediate.cert.subject
    assert crl.is_signature_valid(CA.intermediate.key.public_key())
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(days=3)
    assert reason(crl, REVOKED.cert) is x509.ReasonFlags.key_compromise
    assert reason(crl, ON_HOLD.cert) is x509.ReasonFlags.certificate_hold
    assert len(crl) == 2


def test_leaf_points_at_a_served_crl_and_responder() -> None:
    with HttpReceiver() as server:
        crl = crl_der(make_crl(CA.intermediate, by_serial(REVOCATIONS)))
        url = server.serve_bytes("/int.crl", crl, CRL_CONTENT_TYPE)
        leaf = CA.leaf("aia.crl.test", crl_urls=[url], ocsp_urls=[f"{server.url}/ocsp"])
        points = leaf.cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        [point] = list(points)
        assert point.full_name == [x509.UniformResourceIdentifier(url)]
        access = leaf.cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
        [ocsp] = [a for a in access.value if a.access_method == AuthorityInformationAccessOID.OCSP]
        assert ocsp.access_location.value == f"{server.url}/ocsp"
        response = httpx.get(url, timeout=10)
    assert response.content == crl
    assert response.headers["content-type"] == CRL_CONTENT_TYPE
    assert [r.path for r in server.requests] == ["/int.crl"]


@pytest.mark.parametrize("with_ca_issuers", [True, False])
def test_ca_issuers_url_is_optional(with_ca_issuers: bool) -> None:
    urls = ["http://127.0.0.1:1/int.crt"] if with_ca_issuers else []
    leaf = CA.leaf("issuers.crl.test", ca_issuers_urls=urls)
    found = leaf.cert.extensions.get_extension_for_class
    if with_ca_issuers:
        [entry] = list(found(x509.AuthorityInformationAccess).value)
        assert entry.access_method == AuthorityInformationAccessOID.CA_ISSUERS
    else:
        with pytest.raises(x509.ExtensionNotFound):
            found(x509.AuthorityInformationAccess)
