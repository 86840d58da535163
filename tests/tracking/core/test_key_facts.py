"""Key Type and Key Size, as ``openssl x509 -text`` prints them, and the endpoints' rules."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from tests.fakes import pki
from tests.fakes.clients import needs_openssl
from tests.support.openssl import openssl_x509
from tracking.core.endpoints import (
    Endpoint,
    disagree,
    disagreement,
    endpoints_from_stored,
    stored_endpoints,
)
from tracking.core.ssl_details import LABELS, ssl_details

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def self_signed(key: Any, algorithm: hashes.HashAlgorithm | None) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "key.test")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=30))
        .sign(key, algorithm)
    )


KEYS = {
    "rsa2048": (lambda: rsa.generate_private_key(65537, 2048), hashes.SHA256(), ("RSA", 2048)),
    "rsa1024": (lambda: rsa.generate_private_key(65537, 1024), hashes.SHA256(), ("RSA", 1024)),
    "p256": (lambda: ec.generate_private_key(ec.SECP256R1()), hashes.SHA256(), ("EC", 256)),
    "p384": (lambda: ec.generate_private_key(ec.SECP384R1()), hashes.SHA384(), ("EC", 384)),
    "p521": (lambda: ec.generate_private_key(ec.SECP521R1()), hashes.SHA512(), ("EC", 521)),
    "ed25519": (ed25519.Ed25519PrivateKey.generate, None, ("Ed25519", 256)),
    "ed448": (ed448.Ed448PrivateKey.generate, None, ("Ed448", 456)),
    "dsa2048": (lambda: dsa.generate_private_key(2048), hashes.SHA256(), ("DSA", 2048)),
}


@pytest.mark.parametrize("kind", KEYS)
def test_key_type_and_size(kind: str) -> None:
    make, algorithm, expected = KEYS[kind]
    details = ssl_details(self_signed(make(), algorithm))
    assert (details.key_type, details.key_size) == expected


@needs_openssl
@pytest.mark.parametrize("kind", KEYS)
def test_key_size_is_what_openssl_prints(kind: str) -> None:
    make, algorithm, (_, size) = KEYS[kind]
    cert = self_signed(make(), algorithm)
    text = openssl_x509(cert.public_bytes(serialization.Encoding.PEM), "-noout", "-text")
    bits = re.search(r"Public-Key: \((\d+) bit\)", text)
    if bits is None:  # OpenSSL prints no size for Ed25519 / Ed448 keys
        assert kind in ("ed25519", "ed448")
        return
    assert int(bits[1]) == size


def test_key_labels_follow_the_references_fields() -> None:
    labels = list(LABELS.values())
    assert labels.index("Key Type") > labels.index("SHA-256 Fingerprint")
    assert labels[labels.index("Key Type") + 1] == "Key Size"


# --- endpoints ----------------------------------------------------------------------------------

A = "AA:" * 31 + "AA"
B = "BB:" * 31 + "BB"


def test_endpoints_are_stored_as_json_and_read_back() -> None:
    endpoints = (
        Endpoint("192.0.2.1", 443, A, NOW, "TLSv1.3", "TLS_AES_256_GCM_SHA384"),
        Endpoint("2001:db8::1", 443, error="Connection refused"),
    )
    stored = stored_endpoints(endpoints)
    assert stored[0]["valid_until"] == "2026-01-01T00:00:00+00:00"
    assert stored[1] == {
        "address": "2001:db8::1",
        "port": 443,
        "fingerprint_sha256": None,
        "valid_until": None,
        "tls_version": None,
        "cipher": None,
        "error": "Connection refused",
    }
    assert endpoints_from_stored(stored) == endpoints
    assert endpoints_from_stored(None) == ()


def test_disagreement_ignores_failed_addresses() -> None:
    same = [Endpoint("192.0.2.1", 443, A), Endpoint("192.0.2.2", 443, A)]
    assert not disagree(same) and disagreement(same) is None
    assert not disagree([*same, Endpoint("192.0.2.3", 443, error="timed out")])
    differing = [*same, Endpoint("2001:db8::1", 443, B)]
    assert disagree(differing)
    assert disagreement(differing) == (
        "The addresses serve different certificates (SHA-256): "
        "192.0.2.1, 192.0.2.2 serve AA:AA:AA:AA…; 2001:db8::1 serves BB:BB:BB:BB…."
    )


def test_the_test_ca_leaf_is_rsa_2048() -> None:
    details = ssl_details(pki.test_ca().leaf("x.test").cert)
    assert (details.key_type, details.key_size) == ("RSA", 2048)
