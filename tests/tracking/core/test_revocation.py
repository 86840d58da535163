"""Revocation's pure part: where a certificate says to ask, and what a verified OCSP response or
CRL says (``tracking.core.revocation``); no network, answers built by ``tests.fakes``."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.fakes import pki
from tests.fakes.crl import Revocation as Revoked
from tests.fakes.crl import crl_der, large_crl, make_crl, openssl_crl
from tests.fakes.ocsp_responder import ocsp_error_response, ocsp_response
from tracking.core.changes import Change
from tracking.core.revocation import (
    NO_POINTS,
    Revocation,
    RevocationStatus,
    UntrustedAnswer,
    crl_status,
    is_issuer,
    load_issuer_certificate,
    read_crl,
    read_ocsp,
    revocation_change,
    revocation_points,
    still_revoked,
)

CA = pki.test_ca()
# Another intermediate with a key of its own (``pki.test_ca`` labels share their keys).
OTHER_CA = pki.Chain(
    CA.root,
    pki.issue(pki.name("dstrack Other CA"), issuer=CA.root, ca=True, days=1825, key_slot=41),
)
NOW = pki.NOW
URL = "http://crl.test/int.crl"
KEY_COMPROMISE = Revoked(at=NOW - dt.timedelta(days=3), reason=x509.ReasonFlags.key_compromise)


@pytest.fixture(scope="module")
def leaf() -> pki.Issued:
    return CA.leaf("revocation.test", ocsp_urls=["http://ocsp.test/"], crl_urls=[URL])


# --- where to ask ------------------------------------------------------------------------------


def test_the_points_are_the_http_urls_of_aia_and_cdp() -> None:
    cert = CA.leaf(
        "points.test",
        ocsp_urls=["http://ocsp.test/", "ldap://ldap.test/cn=ocsp"],
        ca_issuers_urls=["http://ca.test/int.der"],
        crl_urls=["http://crl.test/a.crl", "https://crl.test/b.crl", "ldap://ldap.test/crl"],
    ).cert
    points = revocation_points(cert)
    assert points.ocsp == ("http://ocsp.test/",)
    assert points.ca_issuers == ("http://ca.test/int.der",)
    assert points.crls == ("http://crl.test/a.crl", "https://crl.test/b.crl")


def test_a_certificate_without_aia_or_cdp_names_no_one() -> None:
    assert revocation_points(CA.leaf("plain.test").cert) is NO_POINTS
    # caIssuers alone gives no status: nobody to ask
    assert revocation_points(CA.leaf("x.test", ca_issuers_urls=["http://ca.test/"]).cert) == (
        NO_POINTS
    )


def test_the_issuer_is_the_certificate_whose_key_signed(leaf: pki.Issued) -> None:
    assert is_issuer(leaf.cert, CA.intermediate.cert)
    assert not is_issuer(leaf.cert, CA.root.cert)
    assert not is_issuer(leaf.cert, OTHER_CA.intermediate.cert)


def test_a_cai_issuers_answer_may_be_der_or_pem() -> None:
    assert load_issuer_certificate(CA.intermediate.pem.encode()) == CA.intermediate.cert
    from cryptography.hazmat.primitives import serialization

    der = CA.intermediate.cert.public_bytes(serialization.Encoding.DER)
    assert load_issuer_certificate(der) == CA.intermediate.cert
    with pytest.raises(UntrustedAnswer, match="did not answer with a certificate"):
        load_issuer_certificate(b"<html>moved</html>")


# --- OCSP --------------------------------------------------------------------------------------


def test_a_good_answer_from_the_issuer(leaf: pki.Issued) -> None:
    answer = read_ocsp(
        ocsp_response(leaf.cert, CA.intermediate), leaf.cert, CA.intermediate.cert, NOW
    )
    assert answer.status is RevocationStatus.GOOD
    assert answer.revoked_at is None and answer.reason is None
    assert answer.next_update == NOW - dt.timedelta(hours=1) + dt.timedelta(days=1)


def test_a_revoked_answer_says_when_and_why(leaf: pki.Issued) -> None:
    der = ocsp_response(
        leaf.cert, CA.intermediate, status=ocsp.OCSPCertStatus.REVOKED, revocation=KEY_COMPROMISE
    )
    answer = read_ocsp(der, leaf.cert, CA.intermediate.cert, NOW)
    assert answer.status is RevocationStatus.REVOKED
    assert answer.revoked_at == KEY_COMPROMISE.at
    assert answer.reason == "keyCompromise"


def test_an_unknown_answer_is_unknown(leaf: pki.Issued) -> None:
    der = ocsp_response(leaf.cert, CA.intermediate, status=ocsp.OCSPCertStatus.UNKNOWN)
    assert read_ocsp(der, leaf.cert, CA.intermediate.cert, NOW).status is RevocationStatus.UNKNOWN


def test_a_delegated_responder_of_the_issuer_may_sign(leaf: pki.Issued) -> None:
    der = ocsp_response(leaf.cert, CA.intermediate, responder=CA.ocsp_responder())
    assert read_ocsp(der, leaf.cert, CA.intermediate.cert, NOW).status is RevocationStatus.GOOD


def _responder(cn: str, issuer: pki.Issued, **kwargs: object) -> pki.Issued:
    kwargs.setdefault("extended_key_usages", [ExtendedKeyUsageOID.OCSP_SIGNING])
    return pki.issue(pki.name(cn), issuer=issuer, key_slot=20, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cn", "issuer", "kwargs", "why"),
    [
        (
            "No OCSP EKU",
            CA.intermediate,
            {"extended_key_usages": [ExtendedKeyUsageOID.SERVER_AUTH]},
            "not for OCSP signing",
        ),
        ("Other CA's responder", OTHER_CA.intermediate, {}, "not from the issuer"),
        (
            "Expired responder",
            CA.intermediate,
            {"not_before": NOW - dt.timedelta(days=30), "days": 2},
            "out of date",
        ),
    ],
)
def test_a_responder_the_issuer_did_not_delegate_is_not_believed(
    leaf: pki.Issued, cn: str, issuer: pki.Issued, kwargs: dict[str, object], why: str
) -> None:
    der = ocsp_response(leaf.cert, CA.intermediate, responder=_responder(cn, issuer, **kwargs))
    with pytest.raises(UntrustedAnswer, match=why):
        read_ocsp(der, leaf.cert, CA.intermediate.cert, NOW)


def test_a_signature_that_does_not_verify_is_not_believed(leaf: pki.Issued) -> None:
    der = ocsp_response(leaf.cert, CA.intermediate, signer_key=pki.key("rsa", 9))
    with pytest.raises(UntrustedAnswer, match="signature does not verify"):
        read_ocsp(der, leaf.cert, CA.intermediate.cert, NOW)


def test_an_answer_signed_by_another_ca_is_not_believed(leaf: pki.Issued) -> None:
    der = ocsp_response(leaf.cert, OTHER_CA.intermediate)
    with pytest.raises(UntrustedAnswer, match="not about this certificate"):
        read_ocsp(der, leaf.cert, CA.intermediate.cert, NOW)


def test_an_answer_about_another_certificate_is_not_believed(leaf: pki.Issued) -> None:
    der = ocsp_response(CA.leaf("other.test").cert, CA.intermediate)
    with pytest.raises(UntrustedAnswer, match="not about this certificate"):
        read_ocsp(der, leaf.cert, CA.intermediate.cert, NOW)


def test_an_answer_past_its_next_update_is_not_believed(leaf: pki.Issued) -> None:
    der = ocsp_response(
        leaf.cert,
        CA.intermediate,
        this_update=NOW - dt.timedelta(days=3),
        next_update=NOW - dt.timedelta(days=1),
    )
    with pytest.raises(UntrustedAnswer, match="out of date"):
        read_ocsp(der, leaf.cert, CA.intermediate.cert, NOW)


def test_an_answer_not_yet_valid_is_not_believed(leaf: pki.Issued) -> None:
    der = ocsp_response(leaf.cert, CA.intermediate, this_update=NOW + dt.timedelta(hours=2))
    with pytest.raises(UntrustedAnswer, match="not valid yet"):
        read_ocsp(der, leaf.cert, CA.intermediate.cert, NOW)
    # a CA clock a minute ahead is tolerated
    der = ocsp_response(leaf.cert, CA.intermediate, this_update=NOW + dt.timedelta(minutes=1))
    assert read_ocsp(der, leaf.cert, CA.intermediate.cert, NOW).status is RevocationStatus.GOOD


def test_garbage_and_error_statuses_are_not_answers(leaf: pki.Issued) -> None:
    with pytest.raises(UntrustedAnswer, match="not an OCSP response"):
        read_ocsp(b"<html>not OCSP</html>", leaf.cert, CA.intermediate.cert, NOW)
    error = ocsp_error_response(ocsp.OCSPResponseStatus.TRY_LATER)
    with pytest.raises(UntrustedAnswer, match="TRY_LATER"):
        read_ocsp(error, leaf.cert, CA.intermediate.cert, NOW)


@pytest.mark.parametrize("kind", ["ec256", "ed25519"])
def test_ec_and_eddsa_issuers_are_verified(kind: pki.KeyKind) -> None:
    issuer = pki.issue(pki.name(f"{kind} CA"), ca=True, key_kind=kind, key_slot=30)
    cert = pki.issue(pki.name("leaf.test"), issuer=issuer, key_slot=1)
    der = ocsp_response(cert.cert, issuer, hash_alg=hashes.SHA384())
    assert read_ocsp(der, cert.cert, issuer.cert, NOW).status is RevocationStatus.GOOD
    forged = ocsp_response(cert.cert, issuer, signer_key=pki.key(kind, 31))
    with pytest.raises(UntrustedAnswer, match="signature"):
        read_ocsp(forged, cert.cert, issuer.cert, NOW)


# --- CRLs --------------------------------------------------------------------------------------


def test_a_crl_without_the_serial_says_good(leaf: pki.Issued) -> None:
    crl = read_crl(
        crl_der(make_crl(CA.intermediate, {7: KEY_COMPROMISE})), CA.intermediate.cert, URL, NOW
    )
    answer = crl_status(crl, leaf.cert)
    assert answer.status is RevocationStatus.GOOD
    assert answer.next_update == NOW - dt.timedelta(hours=1) + dt.timedelta(days=7)


def test_a_crl_listing_the_serial_says_revoked_when_and_why(leaf: pki.Issued) -> None:
    der = crl_der(make_crl(CA.intermediate, {leaf.cert.serial_number: KEY_COMPROMISE}))
    answer = crl_status(read_crl(der, CA.intermediate.cert, URL, NOW), leaf.cert)
    assert (answer.status, answer.revoked_at, answer.reason) == (
        RevocationStatus.REVOKED,
        KEY_COMPROMISE.at,
        "keyCompromise",
    )


def test_a_crl_made_by_openssl_ca_and_a_pem_crl(leaf: pki.Issued) -> None:
    from cryptography.hazmat.primitives import serialization

    crl = openssl_crl(CA.intermediate, {leaf.cert: Revoked(reason=None)})
    pem = crl.public_bytes(serialization.Encoding.PEM)
    # openssl dates its CRL now, not at the suite's start (pki.NOW): read it as of now.
    now = dt.datetime.now(dt.UTC)
    answer = crl_status(read_crl(pem, CA.intermediate.cert, URL, now), leaf.cert)
    assert answer.status is RevocationStatus.REVOKED
    assert answer.reason is None


def test_a_crl_signed_by_another_key_is_not_believed(leaf: pki.Issued) -> None:
    der = crl_der(make_crl(CA.intermediate, {}, signer_key=pki.key("rsa", 9)))
    with pytest.raises(UntrustedAnswer, match="signature does not verify"):
        read_crl(der, CA.intermediate.cert, URL, NOW)


def test_another_issuers_crl_is_not_believed() -> None:
    der = crl_der(make_crl(OTHER_CA.intermediate, {}))
    with pytest.raises(UntrustedAnswer, match="not the certificate issuer's"):
        read_crl(der, CA.intermediate.cert, URL, NOW)


def test_a_crl_past_its_next_update_or_not_yet_valid_is_not_believed() -> None:
    stale = make_crl(
        CA.intermediate,
        {},
        this_update=NOW - dt.timedelta(days=10),
        next_update=NOW - dt.timedelta(days=3),
    )
    with pytest.raises(UntrustedAnswer, match="out of date"):
        read_crl(crl_der(stale), CA.intermediate.cert, URL, NOW)
    early = make_crl(CA.intermediate, {}, this_update=NOW + dt.timedelta(days=1))
    with pytest.raises(UntrustedAnswer, match="not valid yet"):
        read_crl(crl_der(early), CA.intermediate.cert, URL, NOW)


def test_garbage_is_not_a_crl() -> None:
    with pytest.raises(UntrustedAnswer, match="not a CRL"):
        read_crl(b"\x30\x03\x02\x01\x01", CA.intermediate.cert, URL, NOW)


def test_a_crl_partitioned_elsewhere_does_not_cover_the_leaf(leaf: pki.Issued) -> None:
    def partitioned(point: x509.IssuingDistributionPoint) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(CA.intermediate.cert.subject)
            .last_update(NOW - dt.timedelta(hours=1))
            .next_update(NOW + dt.timedelta(days=1))
            .add_extension(point, critical=True)
        )
        return crl_der(builder.sign(CA.intermediate.key, hashes.SHA256()))

    def idp(url: str | None = None, *, ca_only: bool = False) -> x509.IssuingDistributionPoint:
        names = [x509.UniformResourceIdentifier(url)] if url else None
        return x509.IssuingDistributionPoint(names, None, False, ca_only, None, False, False)

    assert read_crl(partitioned(idp(URL)), CA.intermediate.cert, URL, NOW).serials == frozenset()
    with pytest.raises(UntrustedAnswer, match="another distribution point"):
        read_crl(partitioned(idp("http://crl.test/2.crl")), CA.intermediate.cert, URL, NOW)
    with pytest.raises(UntrustedAnswer, match="end-entity"):
        read_crl(partitioned(idp(ca_only=True)), CA.intermediate.cert, URL, NOW)


def test_a_10_mib_crl_is_read_once_and_looked_up_at_once(leaf: pki.Issued) -> None:
    der = large_crl(CA.intermediate, {leaf.cert.serial_number: KEY_COMPROMISE})
    crl = read_crl(der, CA.intermediate.cert, URL, NOW)
    assert len(crl.serials) > 250_000
    assert crl.memory > len(der) >= 10 * 1024 * 1024
    import time

    started = time.perf_counter()
    other = CA.leaf("not-listed.test").cert
    for _ in range(1000):
        assert crl_status(crl, other).status is RevocationStatus.GOOD
    assert time.perf_counter() - started < 1.0  # a set lookup, not a scan of 300,000 entries
    assert crl_status(crl, leaf.cert).status is RevocationStatus.REVOKED


# --- the change, the stored values ----------------------------------------------------------------


def test_a_new_status_is_one_change_the_revoked_alert_matches() -> None:
    revoked = Revocation(RevocationStatus.REVOKED, checked_at=NOW, revoked_at=NOW)
    assert revocation_change("GOOD", revoked) == Change(
        "revocation_status", "Revocation Status", "GOOD", "REVOKED"
    )
    assert revocation_change("REVOKED", revoked) is None


def test_stored_values_and_description() -> None:
    revoked = Revocation(
        RevocationStatus.REVOKED,
        checked_at=NOW,
        revoked_at=NOW - dt.timedelta(days=1),
        reason="keyCompromise",
        source="CRL http://crl.test/int.crl",
    )
    assert revoked.stored_values() == {
        "revocation_status": "REVOKED",
        "revocation_checked_at": NOW,
        "revoked_at": NOW - dt.timedelta(days=1),
        "revocation_reason": "keyCompromise",
    }
    assert revoked.describe() == "REVOKED (keyCompromise) by CRL http://crl.test/int.crl"
    nobody = Revocation(RevocationStatus.UNAVAILABLE, detail="the certificate names no OCSP")
    assert nobody.describe() == "UNAVAILABLE: the certificate names no OCSP"


def test_a_revocation_is_final_when_the_next_check_gets_no_answer() -> None:
    failed = Revocation(RevocationStatus.UNAVAILABLE, checked_at=NOW, detail="timed out")
    kept = still_revoked("REVOKED", NOW - dt.timedelta(days=1), "keyCompromise", failed)
    assert (kept.status, kept.revoked_at, kept.reason, kept.checked_at) == (
        RevocationStatus.REVOKED,
        NOW - dt.timedelta(days=1),
        "keyCompromise",
        NOW,
    )
    assert revocation_change("REVOKED", kept) is None
    good = Revocation(RevocationStatus.GOOD, checked_at=NOW)  # a certificateHold released
    assert still_revoked("REVOKED", NOW, "certificateHold", good) is good
    assert still_revoked("GOOD", None, None, failed) is failed
