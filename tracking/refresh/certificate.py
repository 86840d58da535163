"""The certificate side of an update: fetch (host) or decode (PEM), then plan what to store."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from models import Device, SslSourceKind
from models.tables import SSL_DETAILS
from tracking.core import clock
from tracking.core.certificates import chain_to_pem, load_der_chain
from tracking.core.changes import Change, describe_changes, yes_no
from tracking.core.endpoints import Endpoint, disagreement, stored_endpoints
from tracking.core.errors import ErrorCode, ProbeError
from tracking.core.revocation import NOT_ASKED, Revocation, revocation_change, still_revoked
from tracking.core.schedule import Outcome
from tracking.core.sources import TLS_AT_ONCE, HostSource, PemSource, SslSource, parse_ssl_source
from tracking.core.ssl_details import (
    SslDetails,
    details_changes,
    from_stored,
    ssl_details,
    stored_values,
)
from tracking.core.verdicts import ChainVerdict, hostname_matches, verify_chain
from tracking.probes.addresses import AddressOutcome, fetch_every_address, telling_error
from tracking.probes.tls import TlsHandshake
from tracking.refresh.events import RawContent
from tracking.refresh.services import Services
from tracking.refresh.state import Row
from tracking.refresh.writes import DetailsWrite, Plan


@dataclass(frozen=True)
class CertificateSnapshot:
    source: SslSource
    details: SslDetails
    chain: tuple[x509.Certificate, ...]
    verdict: ChainVerdict
    hostname_matches: bool | None  # None for a PEM: there is no host to match
    address: str | None
    protocol: str | None
    cipher: str | None
    retrieved_at: datetime
    revocation: Revocation = NOT_ASKED  # OCSP / CRL status of the leaf
    # --- every address: the addresses checked (one, or all with "check all addresses") ---
    endpoints: tuple[Endpoint, ...] = ()

    @cached_property
    def chain_pem(self) -> str:
        return chain_to_pem(self.chain)

    def stored_values(self) -> dict[str, object]:
        """Every column of the device's ``ssl_details`` row but its key."""
        return {
            **stored_values(self.details),
            "chain_pem": self.chain_pem,
            "chain_length": len(self.chain),
            "trusted": self.verdict.trusted,
            "trust_error": self.verdict.reason,
            "hostname_matches": self.hostname_matches,
            "address": self.address,
            "protocol": self.protocol,
            "retrieved_at": self.retrieved_at,
            **self.revocation.stored_values(),
            # --- TLS facts and every address ---
            "cipher": self.cipher,
            "endpoints": stored_endpoints(self.endpoints),
        }

    def raw(self) -> RawContent:
        """The chain as PEM, preceded by the handshake facts (text outside PEM blocks)."""
        stamp = self.retrieved_at.strftime("%Y%m%dT%H%M%SZ")
        if isinstance(self.source, HostSource):
            facts = [
                f"host: {self.source.host}",
                f"port: {self.source.port}",
                f"address: {self.address}",
                f"protocol: {self.protocol}",
                f"cipher: {self.cipher}",
            ]
            if self.source.protocol != TLS_AT_ONCE:
                facts.insert(2, f"via: {self.source.protocol}")
            facts += [
                f"endpoint {e.address}: {e.fingerprint_sha256 or e.error}"
                for e in self.endpoints
                if len(self.endpoints) > 1
            ]
            name = f"ssl-{self.source.host}-{self.source.port}-{stamp}.pem"
        else:
            facts = ["source: PEM-encoded certificate, decoded locally"]
            name = f"ssl-pem-{self.details.fingerprint_sha256.replace(':', '')[:16]}-{stamp}.pem"
        verdict = "yes" if self.verdict.trusted else f"no ({self.verdict.reason})"
        facts += [
            f"retrieved at: {self.retrieved_at.isoformat()}",
            f"chain length: {len(self.chain)}",
            f"chain trusted: {verdict}",
        ]
        if self.hostname_matches is not None:
            facts.append(f"host name matches: {'yes' if self.hostname_matches else 'no'}")
        facts.append(f"revocation: {self.revocation.describe()}")
        text = "".join(f"# {line}\n" for line in facts) + self.chain_pem
        return RawContent(name, "application/x-pem-file", text.encode())


async def retrieve_certificate(
    services: Services, source: SslSource, *, pem_revocation: bool = False
) -> CertificateSnapshot:
    """Fetch (host) or decode (PEM) a certificate; raises ``DstrackError`` when impossible.

    A host's leaf is checked for revocation; a PEM's only with ``pem_revocation`` (updates,
    not creations or edits: see :func:`check_revocation`)."""
    if isinstance(source, PemSource):
        now = clock.now()
        chain: tuple[x509.Certificate, ...] = (source.certificate,)
        revocation = await check_revocation(services, chain, pem=True) if pem_revocation else None
        return CertificateSnapshot(
            source=source,
            details=ssl_details(source.certificate),
            chain=chain,
            verdict=verify_chain(chain, services.trust_roots, now),
            hostname_matches=None,
            address=None,
            protocol=None,
            cipher=None,
            retrieved_at=now,
            revocation=revocation or NOT_ASKED,
        )
    if source.all_addresses:
        handshake, endpoints = await _every_address(services, source)
    else:
        handshake, endpoints = await services.tls.fetch_chain(source), None
    try:
        chain = load_der_chain(handshake.chain_der)
    except ValueError as exc:
        raise ProbeError(ErrorCode.SSL_DETAILS_UNAVAILABLE) from exc
    details = ssl_details(chain[0])
    return CertificateSnapshot(
        source=source,
        details=details,
        chain=chain,
        verdict=verify_chain(chain, services.trust_roots, handshake.retrieved_at),
        hostname_matches=hostname_matches(chain[0], source.host),
        address=handshake.address,
        protocol=handshake.protocol,
        cipher=handshake.cipher,
        retrieved_at=handshake.retrieved_at,
        revocation=await check_revocation(services, chain, pem=False),
        endpoints=endpoints or (_endpoint(handshake, details),),
    )


async def check_revocation(
    services: Services, chain: tuple[x509.Certificate, ...], *, pem: bool
) -> Revocation:
    """The leaf's OCSP / CRL status. A PEM device asks its OCSP responder only (and only on
    an update: creating or editing one reaches no network and spends no retrieval budget)."""
    if services.revocation is None:
        return NOT_ASKED
    return await services.revocation.check(chain, crl=not pem)


# --- every address ----------------------------------------------------------------------------


def _endpoint(handshake: TlsHandshake, details: SslDetails) -> Endpoint:
    """The one address used."""
    return Endpoint(
        address=handshake.address,
        port=handshake.port,
        fingerprint_sha256=details.fingerprint_sha256,
        valid_until=details.valid_until,
        tls_version=handshake.protocol,
        cipher=handshake.cipher,
    )


async def _every_address(
    services: Services, source: HostSource
) -> tuple[TlsHandshake, tuple[Endpoint, ...]]:
    """Each address's certificate; the handshake of the first (in the resolver's order) that
    gave one. Raises the most telling error when none did."""
    outcomes = await fetch_every_address(
        services.tls, services.resolver, source, timeout_s=services.settings.probe_timeout_s
    )
    endpoints = tuple(_outcome_endpoint(outcome, source.port) for outcome in outcomes)
    for outcome, endpoint in zip(outcomes, endpoints, strict=True):
        if outcome.handshake is not None and endpoint.error is None:
            return outcome.handshake, endpoints
    raise telling_error(outcomes)


def _outcome_endpoint(outcome: AddressOutcome, port: int) -> Endpoint:
    handshake = outcome.handshake
    if handshake is None:
        return Endpoint(outcome.address, port, error=outcome.reason)
    try:
        leaf = x509.load_der_x509_certificate(handshake.chain_der[0])
    except ValueError:
        return Endpoint(outcome.address, port, error="the certificate could not be decoded")
    return Endpoint(
        address=outcome.address,
        port=port,
        fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex(":").upper(),
        valid_until=leaf.not_valid_after_utc,
        tls_version=handshake.protocol,
        cipher=handshake.cipher,
    )


def source_of(device: Device) -> SslSource | None:
    """The SSL Source a device was saved with (already validated when it was saved)."""
    if device.ssl_source_kind == SslSourceKind.PEM and device.ssl_pem:
        return parse_ssl_source(device.ssl_pem)
    if device.ssl_source_kind == SslSourceKind.HOST and device.ssl_host:
        return HostSource(
            host=device.ssl_host,
            port=device.ssl_port or 443,
            protocol=device.ssl_protocol or TLS_AT_ONCE,
            all_addresses=device.check_all_addresses,
        )
    return None


def set_source(device: Device, source: SslSource) -> None:
    if isinstance(source, PemSource):
        device.ssl_source_kind = SslSourceKind.PEM
        device.ssl_pem = source.pem
        device.ssl_host = device.ssl_port = device.ssl_protocol = None
    else:
        device.ssl_source_kind = SslSourceKind.HOST
        device.ssl_host = source.host
        device.ssl_port = source.port
        device.ssl_protocol = source.protocol
        device.ssl_pem = None


# --- planning --------------------------------------------------------------------------------


def certificate_changes(old: Row, snap: CertificateSnapshot) -> list[Change]:
    """What differs from the last audit: SSL Details, then the verdicts and the chain."""
    changes = details_changes(from_stored(old), snap.details)
    if old.trusted != snap.verdict.trusted:
        changes.append(
            Change("trusted", "Chain Trusted", yes_no(old.trusted), yes_no(snap.verdict.trusted))
        )
    if old.hostname_matches != snap.hostname_matches:
        changes.append(
            Change(
                "hostname_matches",
                "Host Name Matches",
                yes_no(old.hostname_matches),
                yes_no(snap.hostname_matches),
            )
        )
    same_leaf = old.fingerprint_sha256 == snap.details.fingerprint_sha256
    if same_leaf and old.chain_pem != snap.chain_pem:
        changes.append(
            Change(
                "chain",
                "Chain",
                f"{old.chain_length} certificate(s)",
                f"{len(snap.chain)} certificate(s)",
            )
        )
    if (revoked := revocation_change(old.revocation_status, snap.revocation)) is not None:
        changes.append(revoked)
    changes += tls_changes(old, snap)
    return changes


def tls_changes(old: Row, snap: CertificateSnapshot) -> list[Change]:
    """The negotiated TLS version and cipher (hosts). A value not known before (an audit
    stored before ciphers were, a PEM) is no change."""
    facts = (
        ("tls_version", "TLS Version", old.protocol, snap.protocol),
        ("cipher", "Cipher", old.cipher, snap.cipher),
    )
    return [
        Change(name, label, before, after)
        for name, label, before, after in facts
        if before is not None and after is not None and before != after
    ]


def plan_certificate(old: Row | None, snap: CertificateSnapshot) -> Plan:
    first = old is None
    if old is not None and old.fingerprint_sha256 == snap.details.fingerprint_sha256:
        revocation = still_revoked(
            old.revocation_status, old.revoked_at, old.revocation_reason, snap.revocation
        )
        if revocation is not snap.revocation:
            snap = replace(snap, revocation=revocation)
    changes = () if old is None else tuple(certificate_changes(old, snap))
    return Plan(
        first=first,
        changes=changes,
        note=certificate_note(snap, first=first, changes=changes),
        # A new revocation status alone keeps no RAW file: the chain it holds is unchanged.
        raw=snap.raw() if first or any(c.field != "revocation_status" for c in changes) else None,
        details=DetailsWrite(SSL_DETAILS, snap.stored_values()),
        device_values={"expires_at": snap.details.valid_until, "last_update_error": None},
        outcome=Outcome.OK,
    )


def certificate_note(snap: CertificateSnapshot, *, first: bool, changes: tuple[Change, ...]) -> str:
    """The Activity note of a certificate update."""
    is_host = isinstance(snap.source, HostSource)
    where = f" from {snap.source.display}" if isinstance(snap.source, HostSource) else " (PEM)"
    if first:
        verb = "retrieved" if is_host else "decoded"
        revocation = snap.revocation
        checked = f", revocation status {revocation.status}" if revocation.checked_at else ""
        note = (
            f"SSL certificate details {verb}{where}: "
            f"Common Name {snap.details.common_name or '(none)'}, "
            f"valid until {snap.details.valid_until.isoformat()}{checked}."
        )
    elif changes:
        note = f"SSL certificate details updated{where}: {describe_changes(changes)}."
    else:
        note = f"SSL certificate details checked{where}: no changes."
    differing = disagreement(snap.endpoints)
    return note if differing is None else f"{note} {differing}"
