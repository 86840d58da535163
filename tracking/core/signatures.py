"""Checking a signature over signed bytes with a certificate's public key, whatever its kind
(RSA PKCS #1 v1.5 or PSS, ECDSA, EdDSA, DSA): what ``cryptography`` does for certificates and
CRLs but not for OCSP responses."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ObjectIdentifier
from cryptography.x509.oid import SignatureAlgorithmOID

PublicKey = object  # whatever ``Certificate.public_key()`` gives


def signature_verifies(
    key: PublicKey,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    algorithm_oid: ObjectIdentifier,
) -> bool:
    """Whether ``signature`` over ``data`` verifies with ``key``; False for a key or
    algorithm that does not fit (an RSA signature checked with an EC key...)."""
    try:
        _verify(key, signature, data, hash_algorithm, algorithm_oid)
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        return False
    return True


def _verify(
    key: PublicKey,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    algorithm_oid: ObjectIdentifier,
) -> None:
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key.verify(signature, data)
        return
    if hash_algorithm is None:
        raise ValueError("no hash algorithm")
    if isinstance(key, rsa.RSAPublicKey):
        if algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
            pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=padding.PSS.AUTO)
            key.verify(signature, data, pss, hash_algorithm)
        else:
            key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(hash_algorithm))
    elif isinstance(key, dsa.DSAPublicKey):
        key.verify(signature, data, hash_algorithm)
    else:
        raise TypeError(f"unsupported key {type(key).__name__}")
