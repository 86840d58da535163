"""Revocation, the pure part: where a certificate says to ask, what an OCSP response or a CRL
says about it once verified, and the status kept with the SSL Details.

No I/O here: ``tracking.probes.revocation`` fetches the responses and CRLs (and caches them, by
the policy of ``tracking.core.revocation_cache``). A response or CRL that cannot be trusted
raises :class:`UntrustedAnswer`; the caller turns that into ``UNAVAILABLE``, never ``GOOD``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from tracking.core.changes import Change
from tracking.core.signatures import signature_verifies

# A CA's clock may run a little ahead of ours: an answer issued "in the future" by this much
# is still accepted (and one just past its nextUpdate is not).
CLOCK_SKEW = timedelta(minutes=5)
_URL_SCHEMES = ("http://", "https://")


class RevocationStatus(StrEnum):
    GOOD = "GOOD"  # the issuer's OCSP responder or CRL says it is not revoked
    REVOKED = "REVOKED"
    UNKNOWN = "UNKNOWN"  # the OCSP responder does not know the certificate
    UNAVAILABLE = "UNAVAILABLE"  # nobody to ask, or no answer that could be trusted


@dataclass(frozen=True)
class Revocation:
    """A leaf's revocation status as one update found it.

    ``checked_at``: when dstrack asked (None when there was no one to ask, or it was not
    asked); ``source``: which answer said so (``OCSP http://...``, ``CRL http://...``);
    ``detail``: why the status is UNAVAILABLE, for notes and logs.
    """

    status: RevocationStatus
    checked_at: datetime | None = None
    revoked_at: datetime | None = None
    reason: str | None = None
    source: str | None = None
    detail: str | None = None

    def stored_values(self) -> dict[str, object]:
        """The ``ssl_details`` columns of the status."""
        return {
            "revocation_status": self.status.value,
            "revocation_checked_at": self.checked_at,
            "revoked_at": self.revoked_at,
            "revocation_reason": self.reason,
        }

    def describe(self) -> str:
        """``REVOKED (keyCompromise) by CRL http://...``, for the RAW file's facts."""
        text = self.status.value
        if self.reason:
            text += f" ({self.reason})"
        if self.source:
            text += f" by {self.source}"
        elif self.detail:
            text += f": {self.detail}"
        return text


NOT_ASKED = Revocation(RevocationStatus.UNAVAILABLE, detail="not checked")
REVOCATION_LABEL = "Revocation Status"


def revocation_change(old_status: str | None, new: Revocation) -> Change | None:
    """The change of status since the last audit (alert kind REVOKED matches ``new`` REVOKED)."""
    if old_status == new.status.value:
        return None
    return Change("revocation_status", REVOCATION_LABEL, old_status, new.status.value)


def still_revoked(
    old_status: str | None,
    old_revoked_at: datetime | None,
    old_reason: str | None,
    new: Revocation,
) -> Revocation:
    """A revocation is final: once the same certificate was found REVOKED, a check that gets
    no answer (UNAVAILABLE) keeps it REVOKED, so a flapping responder raises no second alert.
    A GOOD answer (a certificateHold released) is believed."""
    if (
        old_status != RevocationStatus.REVOKED.value
        or new.status is not RevocationStatus.UNAVAILABLE
    ):
        return new
    return Revocation(
        RevocationStatus.REVOKED,
        checked_at=new.checked_at,
        revoked_at=old_revoked_at,
        reason=old_reason,
        detail=f"revoked when last answered; now {new.detail}",
    )


class UntrustedAnswer(Exception):
    """A response or CRL that does not say anything dstrack may believe; ``str()`` says why."""


# --- where to ask ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevocationPoints:
    """The HTTP(S) URLs a certificate names: OCSP responders and its issuer's certificate
    (Authority Information Access), CRLs (CRL Distribution Points)."""

    ocsp: tuple[str, ...] = ()
    ca_issuers: tuple[str, ...] = ()
    crls: tuple[str, ...] = ()


NO_POINTS = RevocationPoints()


def revocation_points(cert: x509.Certificate) -> RevocationPoints:
    """Raises ValueError (or ``x509.DuplicateExtension``...) when the certificate's extensions
    cannot be decoded."""
    extensions = cert.extensions
    ocsp_urls: list[str] = []
    issuer_urls: list[str] = []
    crl_urls: list[str] = []
    for extension in extensions:
        value = extension.value
        if isinstance(value, x509.AuthorityInformationAccess):
            for access in value:
                url = _http_url(access.access_location)
                if url and access.access_method == AuthorityInformationAccessOID.OCSP:
                    ocsp_urls.append(url)
                elif url and access.access_method == AuthorityInformationAccessOID.CA_ISSUERS:
                    issuer_urls.append(url)
        elif isinstance(value, x509.CRLDistributionPoints):
            for point in value:
                # A CRL issued by someone else than the certificate's issuer (cRLIssuer), or
                # one covering only some reasons, cannot say "not revoked": skipped.
                if point.crl_issuer is None and point.reasons is None:
                    crl_urls += [u for n in point.full_name or () if (u := _http_url(n))]
    if not (ocsp_urls or crl_urls):
        return NO_POINTS
    return RevocationPoints(tuple(ocsp_urls), tuple(issuer_urls), tuple(crl_urls))


def _http_url(name: x509.GeneralName) -> str | None:
    if isinstance(name, x509.UniformResourceIdentifier):
        url = name.value.strip()
        if url.lower().startswith(_URL_SCHEMES):
            return url
    return None


@lru_cache(maxsize=4096)
def is_issuer(cert: x509.Certificate, candidate: x509.Certificate) -> bool:
    """Whether ``candidate`` is the certificate whose key signed ``cert`` (remembered: every
    refresh of an unchanged certificate asks again, and a signature check costs more than the
    rest of a cached revocation check)."""
    if cert.issuer != candidate.subject:
        return False
    try:
        cert.verify_directly_issued_by(candidate)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def issuer_among(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    return next((c for c in candidates if is_issuer(cert, c)), None)


def load_issuer_certificate(body: bytes) -> x509.Certificate:
    """A caIssuers answer: one certificate in DER or PEM, or a PKCS #7 bundle of them (the
    first); raises UntrustedAnswer for anything else."""
    from cryptography.hazmat.primitives.serialization import pkcs7

    loaders = (
        x509.load_der_x509_certificate,
        x509.load_pem_x509_certificate,
        lambda data: pkcs7.load_der_pkcs7_certificates(data)[0],
        lambda data: pkcs7.load_pem_pkcs7_certificates(data)[0],
    )
    for load in loaders:
        try:
            return load(body)
        except (ValueError, IndexError, UnsupportedAlgorithm):
            continue
    raise UntrustedAnswer("the caIssuers URL did not answer with a certificate")


# --- OCSP (RFC 6960) ---------------------------------------------------------------------------


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """The DER an OCSP client posts about ``cert`` (SHA-1 CertID, as responders expect)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        cert,
        issuer,
        hashes.SHA1(),  # noqa: S303 - RFC 5019 CertIDs are SHA-1
    )
    return builder.build().public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class OcspAnswer:
    """What a verified OCSP response says about one certificate."""

    status: RevocationStatus
    revoked_at: datetime | None
    reason: str | None
    next_update: datetime | None


def read_ocsp(
    der: bytes, cert: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> OcspAnswer:
    """The status ``der`` gives ``cert``, once the response is verified: about this certificate,
    signed by its issuer or by a responder certificate the issuer gave id-kp-OCSPSigning, and
    current (thisUpdate not in the future, nextUpdate not past)."""
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        raise UntrustedAnswer("the answer is not an OCSP response") from exc
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise UntrustedAnswer(f"the responder answered {response.response_status.name}")
    single = _single_response(response, cert, issuer)
    signer = _responder(response, issuer, now)
    if not signature_verifies(
        signer.public_key(),
        response.signature,
        response.tbs_response_bytes,
        response.signature_hash_algorithm,
        response.signature_algorithm_oid,
    ):
        raise UntrustedAnswer("the OCSP response's signature does not verify")
    current(single.this_update_utc, single.next_update_utc, now, "OCSP response")
    status = {
        ocsp.OCSPCertStatus.GOOD: RevocationStatus.GOOD,
        ocsp.OCSPCertStatus.REVOKED: RevocationStatus.REVOKED,
        ocsp.OCSPCertStatus.UNKNOWN: RevocationStatus.UNKNOWN,
    }[single.certificate_status]
    revoked = status is RevocationStatus.REVOKED
    return OcspAnswer(
        status=status,
        revoked_at=single.revocation_time_utc if revoked else None,
        reason=single.revocation_reason.value if revoked and single.revocation_reason else None,
        next_update=single.next_update_utc,
    )


def _single_response(
    response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        if single.serial_number != cert.serial_number:
            continue
        try:
            expected = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(cert, issuer, single.hash_algorithm)
                .build()
            )
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if (single.issuer_key_hash, single.issuer_name_hash) == (
            expected.issuer_key_hash,
            expected.issuer_name_hash,
        ):
            return single
    raise UntrustedAnswer("the OCSP response is not about this certificate")


def _responder(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> x509.Certificate:
    """Who signed the response: the issuer itself, or a delegated responder it certified."""
    if _is_responder(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _is_responder(response, candidate):
            continue
        if not is_issuer(candidate, issuer):
            raise UntrustedAnswer("the OCSP responder's certificate is not from the issuer")
        if ExtendedKeyUsageOID.OCSP_SIGNING not in _extended_key_usages(candidate):
            raise UntrustedAnswer("the OCSP responder's certificate is not for OCSP signing")
        current(
            candidate.not_valid_before_utc,
            candidate.not_valid_after_utc,
            now,
            "OCSP responder's certificate",
        )
        return candidate
    raise UntrustedAnswer("the OCSP response is signed by neither the issuer nor its responder")


def _is_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_key_hash is not None:
        key_hash = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
        return response.responder_key_hash == key_hash
    return response.responder_name == cert.subject


def _extended_key_usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []


def current(since: datetime, until: datetime | None, now: datetime, what: str) -> None:
    """Raise UntrustedAnswer unless ``now`` is within [since, until] (give or take the skew)."""
    if since > now + CLOCK_SKEW:
        raise UntrustedAnswer(f"the {what} is not valid yet (from {since.isoformat()})")
    if until is not None and until < now - CLOCK_SKEW:
        raise UntrustedAnswer(f"the {what} is out of date (next update {until.isoformat()})")


# --- CRLs (RFC 5280) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedCrl:
    """A CRL whose signature, scope and dates were checked, with its serials for lookups."""

    crl: x509.CertificateRevocationList
    serials: frozenset[int]
    next_update: datetime | None
    size: int  # bytes of DER

    @property
    def memory(self) -> int:
        """Roughly what it holds in memory: the DER and a set entry per serial."""
        return self.size + 80 * len(self.serials)


def read_crl(der: bytes, issuer: x509.Certificate, url: str, now: datetime) -> VerifiedCrl:
    """``der`` (or PEM) as a CRL of ``issuer`` that is current and covers its end-entity
    certificates; raises UntrustedAnswer otherwise. Seconds for a CRL of many MiB: call it
    away from an event loop."""
    try:
        crl = (
            x509.load_pem_x509_crl(der)
            if der.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_crl(der)
        )
    except ValueError as exc:
        raise UntrustedAnswer("the answer is not a CRL") from exc
    if crl.issuer != issuer.subject:
        raise UntrustedAnswer("the CRL is not the certificate issuer's")
    try:
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError, UnsupportedAlgorithm):
        signed = False
    if not signed:
        raise UntrustedAnswer("the CRL's signature does not verify with the issuer's key")
    current(crl.last_update_utc, crl.next_update_utc, now, "CRL")
    _check_scope(crl, url)
    try:
        serials = frozenset(entry.serial_number for entry in crl)
    except ValueError as exc:
        raise UntrustedAnswer("the CRL's entries cannot be read") from exc
    return VerifiedCrl(crl, serials, crl.next_update_utc, len(der))


def _check_scope(crl: x509.CertificateRevocationList, url: str) -> None:
    """A delta CRL, an indirect one, or one partitioned away from end-entity certificates or
    from this distribution point does not say "not revoked" for a leaf."""
    try:
        extensions = list(crl.extensions)
    except ValueError as exc:
        raise UntrustedAnswer("the CRL's extensions cannot be read") from exc
    for extension in extensions:
        value = extension.value
        if isinstance(value, x509.DeltaCRLIndicator):
            raise UntrustedAnswer("the CRL is a delta CRL")
        if isinstance(value, x509.IssuingDistributionPoint):
            if value.only_contains_ca_certs or value.only_contains_attribute_certs:
                raise UntrustedAnswer("the CRL does not cover end-entity certificates")
            if value.indirect_crl or value.only_some_reasons:
                raise UntrustedAnswer("the CRL is indirect or covers only some reasons")
            names = [
                n.value
                for n in value.full_name or ()
                if isinstance(n, x509.UniformResourceIdentifier)
            ]
            if names and url not in names:
                raise UntrustedAnswer("the CRL is for another distribution point")
        elif extension.critical and isinstance(value, x509.UnrecognizedExtension):
            raise UntrustedAnswer("the CRL has a critical extension dstrack does not know")


def crl_status(crl: VerifiedCrl, cert: x509.Certificate) -> OcspAnswer:
    """What a verified CRL says of ``cert`` (same shape as an OCSP answer)."""
    serial = cert.serial_number
    if serial not in crl.serials:
        return OcspAnswer(RevocationStatus.GOOD, None, None, crl.next_update)
    entry = crl.crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    reason = None
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    if reason is x509.ReasonFlags.remove_from_crl:  # only meaningful in a delta CRL
        return OcspAnswer(RevocationStatus.GOOD, None, None, crl.next_update)
    return OcspAnswer(
        RevocationStatus.REVOKED,
        entry.revocation_date_utc,
        reason.value if reason else None,
        crl.next_update,
    )
