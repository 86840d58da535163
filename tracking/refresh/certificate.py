"""The certificate side of an update: fetch (host) or decode (PEM), then plan what to store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from cryptography import x509

from models import Device, SslSourceKind
from tracking.core import clock
from tracking.core.certificates import chain_to_pem, load_der_chain
from tracking.core.changes import Change, describe_changes, yes_no
from tracking.core.errors import ErrorCode, ProbeError
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
from tracking.refresh.events import RawContent
from tracking.refresh.services import Services
from tracking.refresh.state import SSL_DETAILS, Row
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
        text = "".join(f"# {line}\n" for line in facts) + self.chain_pem
        return RawContent(name, "application/x-pem-file", text.encode())


async def retrieve_certificate(services: Services, source: SslSource) -> CertificateSnapshot:
    """Fetch (host) or decode (PEM) a certificate; raises ``DstrackError`` when impossible."""
    if isinstance(source, PemSource):
        now = clock.now()
        chain: tuple[x509.Certificate, ...] = (source.certificate,)
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
        )
    handshake = await services.tls.fetch_chain(source.host, source.port)
    try:
        chain = load_der_chain(handshake.chain_der)
    except ValueError as exc:
        raise ProbeError(ErrorCode.SSL_DETAILS_UNAVAILABLE) from exc
    return CertificateSnapshot(
        source=source,
        details=ssl_details(chain[0]),
        chain=chain,
        verdict=verify_chain(chain, services.trust_roots, handshake.retrieved_at),
        hostname_matches=hostname_matches(chain[0], source.host),
        address=handshake.address,
        protocol=handshake.protocol,
        cipher=handshake.cipher,
        retrieved_at=handshake.retrieved_at,
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
    return changes


def plan_certificate(old: Row | None, snap: CertificateSnapshot) -> Plan:
    first = old is None
    changes = () if old is None else tuple(certificate_changes(old, snap))
    return Plan(
        first=first,
        changes=changes,
        note=certificate_note(snap, first=first, changes=changes),
        raw=snap.raw() if first or changes else None,
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
        return (
            f"SSL certificate details {verb}{where}: "
            f"Common Name {snap.details.common_name or '(none)'}, "
            f"valid until {snap.details.valid_until.isoformat()}."
        )
    if changes:
        return f"SSL certificate details updated{where}: {describe_changes(changes)}."
    return f"SSL certificate details checked{where}: no changes."
