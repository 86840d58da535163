"""The verdicts beside a certificate: does it name the host (RFC 6125), does its chain verify
against the trust store. Neither ever rejects a certificate: both are shown."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import idna
from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from tracking.core.certificates import subject_alternative_names


def hostname_matches(cert: x509.Certificate, host: str) -> bool:
    """RFC 6125: does ``cert`` name ``host``?

    An IP host matches only IP SANs. A DNS host matches a DNS SAN exactly or through a wildcard
    that is the whole left-most label; the subject CN counts only without any SAN extension.
    """
    host = host.strip().removeprefix("[").removesuffix("]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        extension = None
    except ValueError:  # malformed extensions name nothing
        return False
    if address is not None:
        return extension is not None and address in extension.value.get_values_for_type(
            x509.IPAddress
        )
    reference = _a_label(host)
    if reference is None or "*" in reference:
        return False
    if extension is not None:
        patterns = extension.value.get_values_for_type(x509.DNSName)
    else:
        patterns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return any(_dns_matches(pattern, reference) for pattern in patterns)


def _a_label(host: str) -> str | None:
    """Lower-case ASCII form of ``host`` (IDN -> A-labels), without a trailing dot."""
    host = host.rstrip(".").lower()
    if not host or host.isascii():
        return host or None
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None


def _dns_matches(pattern: str, reference: str) -> bool:
    wildcard = pattern.startswith("*.")
    suffix = _a_label(pattern[2:] if wildcard else pattern)
    if suffix is None or "*" in suffix:  # partial or non-left-most wildcards match nothing
        return False
    if not wildcard:
        return suffix == reference
    # The wildcard stands for exactly one non-empty label, never for a top-level domain.
    label, dot, rest = reference.partition(".")
    return bool(label and dot) and "." in suffix and rest == suffix


@dataclass(frozen=True)
class ChainVerdict:
    trusted: bool
    reason: str | None  # short human text when not trusted


class TrustRoots(tuple[x509.Certificate, ...]):
    """Trusted root certificates, with cryptography's ``Store`` of them built once: building
    it for a system store of ~150 roots costs more than the verification itself."""

    @cached_property
    def store(self) -> verification.Store:
        return verification.Store(list(self))


def verify_chain(
    chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], at: datetime
) -> ChainVerdict:
    """Is ``chain[0]`` (the leaf, ``chain[1:]`` untrusted intermediates) trusted by ``roots`` at
    ``at``? The host name is judged separately, so the chain is verified for a name the leaf
    itself carries."""
    if not chain:
        return ChainVerdict(False, "no certificate")
    leaf, intermediates = chain[0], list(chain[1:])
    at = at if at.tzinfo else at.replace(tzinfo=UTC)  # naive means UTC, as everywhere here
    verifier = _verifier(leaf, roots, at) if roots else None
    message = ""
    if verifier is not None:
        try:
            verifier.verify(leaf, intermediates)
            return ChainVerdict(True, None)
        except verification.VerificationError as exc:
            message = str(exc)
    no_san = bool(roots) and verifier is None
    return ChainVerdict(False, _failure_reason(chain, roots, at, message, no_san))


def _verifier(
    leaf: x509.Certificate, roots: Sequence[x509.Certificate], at: datetime
) -> verification.ServerVerifier | None:
    """A verifier for the first SAN of ``leaf`` usable as a subject (a wildcard label filled in)."""
    store = roots.store if isinstance(roots, TrustRoots) else verification.Store(list(roots))
    builder = verification.PolicyBuilder().store(store).time(at)
    try:
        names = subject_alternative_names(leaf)
    except ValueError:
        return None
    for name in names:
        subject = name
        if isinstance(name, x509.DNSName):
            subject = x509.DNSName(re.sub(r"^\*\.", "wildcard.", name.value))
        try:
            return builder.build_server_verifier(subject)
        except (ValueError, TypeError):
            continue
    return None


# cryptography's wording -> OpenSSL's (or plainer) short reason.
_FAILURES = {
    "signature does not match": "certificate signature failure",
    "Forbidden signature algorithm": "weak or unsupported signature algorithm",
}


def _failure_reason(
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime,
    message: str,
    no_san: bool,
) -> str:
    """OpenSSL-like short text for a failed verification (``message`` is cryptography's)."""
    leaf = chain[0]
    if leaf.subject == leaf.issuer:
        return "self-signed certificate"
    if no_san:
        return "certificate has no subject alternative name"
    if "not valid at validation time" in message:
        for role, certs in (("", chain[:1]), ("intermediate ", chain[1:]), ("root ", roots)):
            for cert in certs:
                if at > cert.not_valid_after_utc:
                    return f"{role}certificate has expired"
                if at < cert.not_valid_before_utc:
                    return f"{role}certificate is not yet valid"
    if not message or "no interior errors" in message or "exceeds max depth" in message:
        if any(cert.subject == cert.issuer for cert in chain[1:]):
            return "self-signed certificate in certificate chain"
        return "unable to get local issuer certificate"
    for needle, reason in _FAILURES.items():
        if needle in message:
            return reason
    # Anything else: cryptography's own words, without its prefixes and certificate dump.
    message = re.sub(r"^(validation failed: )?(candidates exhausted: )?", "", message)
    return re.sub(r" \(encountered processing .*\)$", "", message, flags=re.S)
