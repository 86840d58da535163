"""The OCSP fakes: the openssl responder through httpx and `openssl ocsp`, faults, DER helpers."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.fakes import pki
from tests.fakes.clients import OPENSSL, needs_openssl
from tests.fakes.crl import Revocation
from tests.fakes.ocsp_responder import (
    OCSP_REQUEST_TYPE,
    OcspFault,
    OcspResponder,
    faulty_ocsp_responder,
    ocsp_error_response,
    ocsp_request,
    ocsp_response,
)
from tests.fakes.tls_server import ClosedPort

CA = pki.test_ca()
GOOD = CA.leaf("good.ocsp.test")
REVOKED = CA.leaf("revoked.ocsp.test")
UNKNOWN = CA.leaf("unknown.ocsp.test")
REVOCATION = Revocation(
    at=pki.NOW - dt.timedelta(days=3), reason=x509.ReasonFlags.cessation_of_operation
)


def ask(url: str, cert: x509.Certificate) -> ocsp.OCSPResponse:
    response = httpx.post(
        url,
        content=ocsp_request(cert, CA.intermediate.cert),
        headers={"Content-Type": OCSP_REQUEST_TYPE},
        timeout=10,
    )
    assert response.status_code == 200
    return ocsp.load_der_ocsp_response(response.content)


def signed_by(response: ocsp.OCSPResponse, signer: pki.Issued) -> bool:
    public_key = signer.key.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    try:
        public_key.verify(
            response.signature,
            response.tbs_response_bytes,
            padding.PKCS1v15(),
            response.signature_hash_algorithm,  # type: ignore[arg-type]
        )
    except InvalidSignature:
        return False
    return True


@needs_openssl
def test_openssl_responder_answers_good_revoked_and_unknown() -> None:
    with OcspResponder(CA.intermediate, good=[GOOD.cert], revoked={REVOKED.cert: REVOCATION}) as r:
        good, revoked, unknown = (ask(r.url, c.cert) for c in (GOOD, REVOKED, UNKNOWN))
    assert good.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert good.serial_number == GOOD.cert.serial_number
    assert good.responder_name == CA.intermediate.cert.subject
    assert signed_by(good, CA.intermediate)
    assert good.next_update_utc is not None and good.this_update_utc is not None
    assert good.next_update_utc - good.this_update_utc == dt.timedelta(days=1)
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_time_utc == REVOCATION.at
    assert revoked.revocation_reason is x509.ReasonFlags.cessation_of_operation
    assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


@needs_openssl
def test_delegated_responder_signs_with_its_own_certificate() -> None:
    delegate = CA.ocsp_responder()
    eku = delegate.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert delegate.cert.extensions.get_extension_for_class(x509.OCSPNoCheck)
    with OcspResponder(CA.intermediate, revoked={REVOKED.cert: REVOCATION}, signer=delegate) as r:
        answer = ask(r.url, REVOKED.cert)
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.responder_name == delegate.cert.subject
    assert answer.certificates == [delegate.cert]
    assert signed_by(answer, delegate) and not signed_by(answer, CA.intermediate)


@needs_openssl
@pytest.mark.parametrize("delegated", [False, True])
def test_openssl_client_verifies_the_answers(tmp_path: Path, delegated: bool) -> None:
    """An independent client: `openssl ocsp -url` checks the signature and the chain."""
    for name, issued in {"root": CA.root, "int": CA.intermediate, "revoked": REVOKED}.items():
        (tmp_path / f"{name}.pem").write_text(issued.pem)
    signer = CA.ocsp_responder() if delegated else None
    with OcspResponder(CA.intermediate, revoked={REVOKED.cert: REVOCATION}, signer=signer) as r:
        assert OPENSSL is not None
        result = subprocess.run(
            [OPENSSL, "ocsp", "-issuer", tmp_path / "int.pem", "-cert", tmp_path / "revoked.pem",
             "-url", r.url, "-CAfile", tmp_path / "root.pem",
             "-verify_other", tmp_path / "int.pem", "-timeout", "10"],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
    assert "Response verify OK" in result.stderr, result.stderr
    assert "revoked.pem: revoked" in result.stdout
    assert "Reason: cessationOfOperation" in result.stdout


@needs_openssl
def test_responder_port_is_free_and_released() -> None:
    responder = OcspResponder(CA.intermediate).start()
    port = responder.port
    assert port > 0 and responder.log
    responder.close()
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"http://127.0.0.1:{port}/", content=b"", timeout=5)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (OcspFault.NOT_HTTP, httpx.RemoteProtocolError),
        (OcspFault.NEVER_ANSWERS, httpx.ReadTimeout),
    ],
)
def test_faulty_responders_that_fail_the_transport(
    fault: OcspFault, error: type[Exception]
) -> None:
    with faulty_ocsp_responder(fault) as responder, pytest.raises(error):
        httpx.post(
            responder.url, content=ocsp_request(GOOD.cert, CA.intermediate.cert), timeout=0.3
        )


def test_faulty_responders_that_answer_wrongly() -> None:
    for fault in (OcspFault.GARBAGE, OcspFault.HUGE):
        with faulty_ocsp_responder(fault) as responder:
            body = httpx.post(responder.url, content=b"", timeout=10).content
            with pytest.raises(ValueError):
                ocsp.load_der_ocsp_response(body)
            assert fault is not OcspFault.HUGE or len(body) == 25 * 1024 * 1024
    with faulty_ocsp_responder(OcspFault.HTTP_ERROR) as responder:
        assert httpx.post(responder.url, content=b"", timeout=10).status_code == 500
    with faulty_ocsp_responder(OcspFault.TRY_LATER) as responder:
        body = httpx.post(responder.url, content=b"", timeout=10).content
        assert ocsp.load_der_ocsp_response(body).response_status is (
            ocsp.OCSPResponseStatus.TRY_LATER
        )


def test_unreachable_responder_is_a_closed_port() -> None:
    with ClosedPort() as port, pytest.raises(httpx.ConnectError):
        httpx.post(f"http://127.0.0.1:{port.port}/", content=b"", timeout=5)


# -- DER helpers ---------------------------------------------------------------------------------


def test_ocsp_response_builds_each_status() -> None:
    good = ocsp.load_der_ocsp_response(ocsp_response(GOOD.cert, CA.intermediate))
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD and signed_by(good, CA.intermediate)
    assert good.certificates == []
    revoked = ocsp.load_der_ocsp_response(
        ocsp_response(
            REVOKED.cert, CA.intermediate, status=ocsp.OCSPCertStatus.REVOKED, revocation=REVOCATION
        )
    )
    assert revoked.revocation_time_utc == REVOCATION.at
    assert revoked.revocation_reason is x509.ReasonFlags.cessation_of_operation
    unknown = ocsp.load_der_ocsp_response(
        ocsp_response(UNKNOWN.cert, CA.intermediate, status=ocsp.OCSPCertStatus.UNKNOWN)
    )
    assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def test_ocsp_response_delegated_wrong_key_and_dates() -> None:
    delegate = CA.ocsp_responder()
    delegated = ocsp.load_der_ocsp_response(
        ocsp_response(GOOD.cert, CA.intermediate, responder=delegate)
    )
    assert delegated.certificates == [delegate.cert] and signed_by(delegated, delegate)
    forged = ocsp.load_der_ocsp_response(
        ocsp_response(GOOD.cert, CA.intermediate, signer_key=pki.key("rsa", 21))
    )
    assert forged.responder_key_hash == good_key_hash() and not signed_by(forged, CA.intermediate)
    stale_from = pki.NOW - dt.timedelta(days=10)
    stale = ocsp.load_der_ocsp_response(
        ocsp_response(
            GOOD.cert,
            CA.intermediate,
            this_update=stale_from,
            next_update=stale_from + dt.timedelta(days=1),
        )
    )
    assert stale.next_update_utc == stale_from + dt.timedelta(days=1)


def good_key_hash() -> bytes:
    return ocsp.load_der_ocsp_response(ocsp_response(GOOD.cert, CA.intermediate)).responder_key_hash  # type: ignore[return-value]


def test_error_response_has_only_a_status() -> None:
    answer = ocsp.load_der_ocsp_response(ocsp_error_response(ocsp.OCSPResponseStatus.UNAUTHORIZED))
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
