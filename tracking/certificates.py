"""Pure X.509 decoding: a certificate (PEM or DER) -> SslDetails, plus chain verdicts.

No sockets, no database: the network side lives in ``tracking.probes.tls``.
"""

from __future__ import annotations

import re

from cryptography import x509

from tracking.errors import ErrorCode, ValidationError

MAX_PEM_CHARS = 64 * 1024

_PEM_MARKER = re.compile(r"-----(BEGIN|END) ([A-Z0-9 ]+)-----")


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
        return x509.load_pem_x509_certificate(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValidationError(ErrorCode.INVALID_PEM, field="sslSource") from exc
