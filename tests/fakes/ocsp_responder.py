"""OCSP for tests: a real ``openssl ocsp`` responder, broken responders, and DER responses.

* :class:`OcspResponder` - ``openssl ocsp -index`` over an index of good and revoked
  certificates (any other serial is answered ``unknown``), signed by the issuer itself or by a
  delegated responder certificate (id-kp-OCSPSigning, see :meth:`pki.Chain.ocsp_responder`).
  It listens on a port the kernel picks (``-port 0``, read back from its ``ACCEPT`` line)::

      with OcspResponder(ca.intermediate, good=[a.cert], revoked={b.cert: Revocation()}) as r:
          leaf = ca.leaf("a.test", ocsp_urls=[r.url])

* :func:`faulty_ocsp_responder` - an :class:`HttpReceiver` answering garbage, a huge body,
  an HTTP error or never; :class:`tests.fakes.tls_server.ClosedPort` is the unreachable one.
* :func:`ocsp_response` - the DER of a signed OCSP response built with ``cryptography`` (what a
  server staples, or what a unit test feeds the parser); :func:`ocsp_request` the DER a client
  posts.
"""

from __future__ import annotations

import datetime as dt
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509 import ocsp

from tests.fakes import crl, pki
from tests.fakes.crl import Revocation, openssl_index, write_ca_files
from tests.fakes.http_receiver import Answer, HttpReceiver

OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
HUGE_OCSP_SIZE = 25 * 1024 * 1024
_ACCEPT = re.compile(rb"ACCEPT .*:(\d+) PID=")


class OcspResponder:
    """A real ``openssl ocsp`` responder process; see the module docstring.

    ``signer`` signs the answers (default: ``issuer`` itself); pass the delegated responder
    certificate of :meth:`pki.Chain.ocsp_responder` for the delegated case. ``next_update_days``
    0 leaves nextUpdate out.
    """

    def __init__(
        self,
        issuer: pki.Issued,
        *,
        good: Iterable[x509.Certificate] = (),
        revoked: Mapping[x509.Certificate, Revocation] | None = None,
        signer: pki.Issued | None = None,
        next_update_days: int = 1,
    ) -> None:
        self.issuer = issuer
        self.signer = signer or issuer
        self.index = openssl_index(good, revoked or {})
        self.next_update_days = next_update_days
        self.port = 0
        self.log: list[str] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 10.0) -> Self:
        openssl = shutil.which("openssl")
        assert openssl is not None, "the openssl command is not installed"
        self._tmp = tempfile.TemporaryDirectory(prefix="dstrack-ocsp-")
        directory = Path(self._tmp.name)
        write_ca_files(directory, self.issuer, self.index)
        (directory / "signer.crt").write_text(self.signer.pem)
        (directory / "signer.key").write_bytes(self.signer.key_pem)
        command = [
            openssl, "ocsp", "-index", str(directory / "index.txt"), "-port", "0",
            "-CA", str(directory / "issuer.crt"),
            "-rsigner", str(directory / "signer.crt"), "-rkey", str(directory / "signer.key"),
            "-timeout", "5", "-ignore_err",
        ]  # fmt: skip
        if self.next_update_days:
            command += ["-ndays", str(self.next_update_days)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            self.port = self._read_port(timeout)
        except BaseException:
            self.close()
            raise
        self._drain = threading.Thread(target=self._drain_log, daemon=True)
        self._drain.start()
        return self

    def _read_port(self, timeout: float) -> int:
        assert self._process is not None and self._process.stdout is not None
        output, seen, deadline = self._process.stdout, b"", time.monotonic() + timeout
        while (match := _ACCEPT.search(seen)) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([output], [], [], left)[0]:
                raise RuntimeError(f"openssl ocsp did not start: {seen.decode(errors='replace')}")
            chunk = output.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                raise RuntimeError(f"openssl ocsp exited: {seen.decode(errors='replace')}")
            seen += chunk
        self.log.extend(seen.decode(errors="replace").splitlines())
        return int(match.group(1))

    def _drain_log(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self.log.append(line.decode(errors="replace").rstrip())

    def close(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._drain is not None:
                self._drain.join(timeout=5)
            assert self._process.stdout is not None
            self._process.stdout.close()
            self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class OcspFault(StrEnum):
    GARBAGE = "garbage"  # 200 application/ocsp-response with bytes that are no DER
    HUGE = "huge"  # 200 with a 25 MiB body
    HTTP_ERROR = "http_error"  # 500
    NOT_HTTP = "not_http"  # bytes that are not an HTTP answer, then close
    NEVER_ANSWERS = "never_answers"  # reads the request, then silence until close()
    TRY_LATER = "try_later"  # a well-formed OCSP answer with status tryLater (no signature)


def faulty_ocsp_responder(fault: OcspFault) -> HttpReceiver:
    """An HTTP server playing an OCSP responder gone wrong; start it with ``with``."""
    answers = {
        OcspFault.GARBAGE: Answer(body=b"<html>not OCSP</html>", content_type=OCSP_RESPONSE_TYPE),
        OcspFault.HUGE: Answer(body=b"\x30" * HUGE_OCSP_SIZE, content_type=OCSP_RESPONSE_TYPE),
        OcspFault.HTTP_ERROR: Answer(500, b"Internal Server Error"),
        OcspFault.NOT_HTTP: Answer(raw=b"\x00\x01garbage, not HTTP\r\n\r\n"),
        OcspFault.NEVER_ANSWERS: Answer(hang=True),
        OcspFault.TRY_LATER: Answer(
            body=ocsp_error_response(ocsp.OCSPResponseStatus.TRY_LATER),
            content_type=OCSP_RESPONSE_TYPE,
        ),
    }
    return HttpReceiver(default=answers[fault])


# -- DER built with cryptography -------------------------------------------------------------------


def ocsp_request(
    cert: x509.Certificate, issuer: x509.Certificate, hash_alg: hashes.HashAlgorithm | None = None
) -> bytes:
    """The DER of an OCSP request for ``cert`` (SHA-1 CertID by default, as clients send)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hash_alg or hashes.SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


def ocsp_response(
    cert: x509.Certificate,
    issuer: pki.Issued,
    *,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    revocation: Revocation | None = None,
    responder: pki.Issued | None = None,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    signer_key: pki.PrivateKey | None = None,
    hash_alg: hashes.HashAlgorithm | None = None,
) -> bytes:
    """The DER of a successful, signed OCSP response about ``cert``.

    ``status`` REVOKED takes its time and reason from ``revocation`` (default
    :class:`Revocation`). Signed by ``issuer`` (responder id by key hash), or by ``responder``
    (a delegated responder, whose certificate goes in the response). ``signer_key`` signs with
    another key than the named responder's (a signature that does not verify). thisUpdate
    defaults to an hour ago, nextUpdate to a day after thisUpdate.
    """
    signer = responder or issuer
    this_update = this_update or pki.NOW - dt.timedelta(hours=1)
    revoked = status is ocsp.OCSPCertStatus.REVOKED
    revocation = (revocation or Revocation()) if revoked else None
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer.cert,
            algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=this_update,
            next_update=next_update or this_update + dt.timedelta(days=1),
            revocation_time=revocation.at if revocation else None,
            revocation_reason=revocation.reason if revocation else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
    )
    if responder is not None:
        builder = builder.certificates([responder.cert])
    key = signer.key
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hash_alg or hashes.SHA256()
    response = builder.sign(key, algorithm)
    der = response.public_bytes(serialization.Encoding.DER)
    return der if signer_key is None else _sign_again(der, signer_key)


def _sign_again(der: bytes, key: pki.PrivateKey) -> bytes:
    """The response with its tbsResponseData signed by ``key`` (the builder refuses a key that
    does not match the responder certificate)."""
    status, tagged = pki._der_elements(pki._der_content(der))
    response_type, octets = pki._der_elements(pki._der_content(pki._der_content(tagged)))
    tbs, algorithm, _, *certs = pki._der_elements(pki._der_content(pki._der_content(octets)))
    signature = pki._der(0x03, b"\x00" + crl._sign(key, tbs))
    basic = pki._der(0x30, tbs + algorithm + signature + b"".join(certs))
    response_bytes = pki._der(0x30, response_type + pki._der(0x04, basic))
    return pki._der(0x30, status + pki._der(0xA0, response_bytes))


def ocsp_error_response(status: ocsp.OCSPResponseStatus) -> bytes:
    """The DER of an unsuccessful OCSP response (tryLater, unauthorized, internalError...)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )
