"""The certificate side of an audit: fetch or decode, then store as the current SSL Details."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from sqlmodel import Session

from models import Device, SslDetailsRecord, SslSourceKind
from tracking.core import clock
from tracking.core.certificates import (
    ChainVerdict,
    SslDetails,
    chain_to_pem,
    details_changes,
    hostname_matches,
    load_der_chain,
    ssl_details,
    verify_chain,
)
from tracking.core.errors import ErrorCode, ProbeError
from tracking.core.schedule import Outcome
from tracking.core.sources import HostSource, PemSource, SslSource, parse_ssl_source
from tracking.refresh.rawstore import RawStore
from tracking.refresh.records import (
    AuditResult,
    Change,
    RawContent,
    add_note,
    assign,
    describe_changes,
    reschedule,
    store_raw,
)
from tracking.refresh.services import Services


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
        return HostSource(host=device.ssl_host, port=device.ssl_port or 443)
    return None


def set_source(device: Device, source: SslSource) -> None:
    if isinstance(source, PemSource):
        device.ssl_source_kind = SslSourceKind.PEM
        device.ssl_pem = source.pem
        device.ssl_host = None
        device.ssl_port = None
    else:
        device.ssl_source_kind = SslSourceKind.HOST
        device.ssl_host = source.host
        device.ssl_port = source.port
        device.ssl_pem = None


# The last audit: the ORM row, or the same columns read as a plain row (unchanged_refresh).
StoredDetails = SslDetailsRecord | sa.Row[Any]


def _details_of(record: StoredDetails) -> SslDetails:
    return SslDetails(
        common_name=record.common_name,
        valid_from=record.valid_from,
        valid_until=record.valid_until,
        issued_by=record.issued_by,
        organization=record.organization,
        organizational_unit=record.organizational_unit,
        location=record.location,
        serial_number=record.serial_number,
        signature_algorithm=record.signature_algorithm,
        subject_alternative_names=tuple(record.subject_alternative_names),
        fingerprint_sha256=record.fingerprint_sha256,
    )


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def certificate_changes(old: StoredDetails, snap: CertificateSnapshot) -> list[Change]:
    """What differs from the last audit: SSL Details, then the verdicts and the chain."""
    return details_changes(_details_of(old), snap.details) + _verdict_changes(old, snap)


def _verdict_changes(old: StoredDetails, snap: CertificateSnapshot) -> list[Change]:
    changes: list[Change] = []
    if old.trusted != snap.verdict.trusted:
        changes.append(("Chain Trusted", _yes_no(old.trusted), _yes_no(snap.verdict.trusted)))
    if old.hostname_matches != snap.hostname_matches:
        changes.append(
            ("Host Name Matches", _yes_no(old.hostname_matches), _yes_no(snap.hostname_matches))
        )
    same_leaf = old.fingerprint_sha256 == snap.details.fingerprint_sha256
    if same_leaf and old.chain_pem != snap.chain_pem:
        changes.append(
            ("Chain", f"{old.chain_length} certificate(s)", f"{len(snap.chain)} certificate(s)")
        )
    return changes


def apply_certificate(
    session: Session,
    device: Device,
    snap: CertificateSnapshot,
    *,
    raw_store: RawStore,
    author: str,
    now: datetime,
) -> AuditResult:
    """Store a certificate snapshot as the device's current audit, in the caller's transaction."""
    assert device.id is not None
    old = session.get(SslDetailsRecord, device.id)
    changes: list[Change] = []
    if old is not None:
        changes = certificate_changes(old, snap)
    record = old or SslDetailsRecord(
        device_id=device.id,
        valid_from=snap.details.valid_from,
        valid_until=snap.details.valid_until,
        serial_number=snap.details.serial_number,
        signature_algorithm=snap.details.signature_algorithm,
        fingerprint_sha256=snap.details.fingerprint_sha256,
        chain_pem="",
        retrieved_at=snap.retrieved_at,
    )
    _fill_record(record, snap)
    session.add(record)

    assign(device, expires_at=snap.details.valid_until, last_updated_at=now, last_update_error=None)
    session.add(device)

    result = AuditResult(device_id=device.id, first=old is None, changes=changes)
    result.changed = result.first or bool(changes)
    if result.changed:
        result.raw_file = store_raw(session, device, snap.raw(), raw_store=raw_store, now=now)
    result.note = certificate_note(snap, first=result.first, changes=changes)
    add_note(session, device, result.note, author=author, now=now)
    result.next_update = reschedule(session, device, outcome=Outcome.OK, now=now)
    return result


def certificate_note(snap: CertificateSnapshot, *, first: bool, changes: list[Change]) -> str:
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


def _fill_record(record: SslDetailsRecord, snap: CertificateSnapshot) -> None:
    d = snap.details
    assign(
        record,
        common_name=d.common_name,
        valid_from=d.valid_from,
        valid_until=d.valid_until,
        issued_by=d.issued_by,
        organization=d.organization,
        organizational_unit=d.organizational_unit,
        location=d.location,
        serial_number=d.serial_number,
        signature_algorithm=d.signature_algorithm,
        subject_alternative_names=list(d.subject_alternative_names),
        fingerprint_sha256=d.fingerprint_sha256,
        chain_pem=snap.chain_pem,
        chain_length=len(snap.chain),
        trusted=snap.verdict.trusted,
        trust_error=snap.verdict.reason,
        hostname_matches=snap.hostname_matches,
        address=snap.address,
        protocol=snap.protocol,
        retrieved_at=snap.retrieved_at,
    )
