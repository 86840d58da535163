"""The ``openssl`` binary as an oracle for certificate decoding: dstrack shows what it prints."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

OPENSSL = shutil.which("openssl")


def openssl_x509(pem: bytes, *args: str) -> str:
    """What ``openssl x509 <args>`` prints on stdout for the certificate ``pem`` (UTF-8)."""
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, "x509", *args], input=pem, capture_output=True, check=True
    ).stdout.decode("utf-8")


def openssl_time(text: str) -> dt.datetime:
    """A ``notBefore=`` / ``notAfter=`` value, e.g. ``Mar  6 00:00:00 2008 GMT``."""
    return dt.datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)


def openssl_sans(pem: bytes) -> list[str]:
    """The DNS names and IP addresses of the certificate's subjectAltName, in order, as
    ``openssl x509 -ext subjectAltName`` prints them (other kinds of names left out)."""
    lines = openssl_x509(pem, "-noout", "-ext", "subjectAltName").splitlines()
    names = lines[1].strip().split(", ") if len(lines) > 1 else []
    return [
        value
        for kind, _, value in (name.partition(":") for name in names)
        if kind in ("DNS", "IP Address")
    ]
