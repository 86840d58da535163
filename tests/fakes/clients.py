"""Real clients the fakes' self-tests talk through: ``openssl s_client`` and a lax TLS context."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess

import pytest
from cryptography import x509

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def client_context() -> ssl.SSLContext:
    """A client context that checks nothing: the fakes serve test certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def peer_leaf(sock: object) -> bytes | None:
    """The DER of the certificate a client's TLS socket received."""
    assert isinstance(sock, ssl.SSLSocket), f"not a TLS socket: {sock!r}"
    return sock.getpeercert(binary_form=True)


def s_client(
    port: int, *, starttls: str | None = None, extra: tuple[str, ...] = (), timeout: float = 10
) -> subprocess.CompletedProcess[bytes]:
    """``openssl s_client`` against 127.0.0.1:port (``-starttls <proto>`` when given)."""
    assert OPENSSL is not None
    command = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts", *extra]
    if starttls is not None:
        command += ["-starttls", starttls]
    return subprocess.run(command, input=b"", capture_output=True, timeout=timeout, check=False)


def s_client_chain(port: int, **kwargs: object) -> list[x509.Certificate]:
    """The certificate chain the server sent to ``openssl s_client`` (empty if no handshake)."""
    result = s_client(port, **kwargs)  # type: ignore[arg-type]
    return [x509.load_pem_x509_certificate(pem) for pem in _PEM.findall(result.stdout)]
