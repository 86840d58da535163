"""The one audit use case: probe -> decode -> diff with the last audit -> store -> RAW file ->
Activity note -> next update.

Every path goes through here: device creation, a forced update, "Save & Update" and the
scheduled refresh in Dagster. The network part runs first, outside any transaction; everything
it learned is then written in one transaction, so a failure half-way leaves the previous audit
intact and only records the error on the device.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from sqlmodel import Session

from models import (
    ActivityNote,
    Device,
    DeviceCategory,
    RawFile,
    SslDetailsRecord,
    SslSourceKind,
    UpdateJob,
)
from models.db import reader, transaction
from tracking import clock
from tracking.certificates import (
    ChainVerdict,
    SslDetails,
    chain_to_pem,
    details_changes,
    hostname_matches,
    ssl_details,
    verify_chain,
)
from tracking.errors import DstrackError, ErrorCode, ProbeError, ValidationError
from tracking.inventory import not_found, tracking_enabled
from tracking.rawstore import RawStore
from tracking.schedule import NextUpdate, Outcome, job_wanted, next_update
from tracking.services import Services
from tracking.sources import HostSource, PemSource, SslSource, parse_ssl_source

SYSTEM_AUTHOR = "System"
SSL_UPDATED_MESSAGE = "The SSL certificate was updated."
DOMAIN_UPDATED_MESSAGE = "The domain was updated."
Change = tuple[str, str | None, str | None]


# --- what a retrieval learned (no database yet) ------------------------------------------


@dataclass(frozen=True)
class RawContent:
    file_name: str
    content_type: str
    content: bytes


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
        facts += [
            f"retrieved at: {self.retrieved_at.isoformat()}",
            f"chain length: {len(self.chain)}",
            f"chain trusted: {'yes' if self.verdict.trusted else 'no'}"
            + (f" ({self.verdict.reason})" if self.verdict.reason else ""),
        ]
        if self.hostname_matches is not None:
            facts.append(f"host name matches: {'yes' if self.hostname_matches else 'no'}")
        text = "".join(f"# {line}\n" for line in facts) + chain_to_pem(self.chain)
        return RawContent(name, "application/x-pem-file", text.encode())


async def retrieve_certificate(services: Services, source: SslSource) -> CertificateSnapshot:
    """Fetch (host) or decode (PEM) a certificate; raises ``DstrackError`` when impossible."""
    now = clock.now()
    if isinstance(source, PemSource):
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
    if not handshake.chain_der:
        raise ProbeError(ErrorCode.SSL_DETAILS_UNAVAILABLE)
    try:
        chain = tuple(x509.load_der_x509_certificate(der) for der in handshake.chain_der)
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


# --- writing what was learned ------------------------------------------------------------


@dataclass
class AuditResult:
    device_id: int
    changed: bool = False
    first: bool = False
    changes: list[Change] = field(default_factory=list)
    note: str = ""
    raw_file: RawFile | None = None
    error: DstrackError | None = None
    next_update: NextUpdate | None = None
    is_domain: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def _details_of(record: SslDetailsRecord) -> SslDetails:
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


def _verdict_changes(old: SslDetailsRecord, snap: CertificateSnapshot) -> list[Change]:
    changes: list[Change] = []
    if old.trusted != snap.verdict.trusted:
        changes.append(("Chain Trusted", _yes_no(old.trusted), _yes_no(snap.verdict.trusted)))
    if old.hostname_matches != snap.hostname_matches:
        changes.append(
            (
                "Host Name Matches",
                _yes_no(old.hostname_matches),
                _yes_no(snap.hostname_matches),
            )
        )
    new_chain = chain_to_pem(snap.chain)
    if old.chain_pem != new_chain and old.fingerprint_sha256 == snap.details.fingerprint_sha256:
        changes.append(
            ("Chain", f"{old.chain_length} certificate(s)", f"{len(snap.chain)} certificate(s)")
        )
    return changes


def describe_changes(changes: Iterable[Change]) -> str:
    return "; ".join(
        f"{label}: {old or '(none)'} → {new or '(none)'}" for label, old, new in changes
    )


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
    first = old is None
    changes: list[Change] = []
    if old is not None:
        changes = details_changes(_details_of(old), snap.details) + _verdict_changes(old, snap)
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

    device.expires_at = snap.details.valid_until
    device.last_updated_at = now
    device.last_update_error = None
    session.add(device)

    result = AuditResult(device_id=device.id, first=first, changes=changes)
    result.changed = first or bool(changes)
    if result.changed:
        result.raw_file = store_raw(session, device, snap.raw(), raw_store=raw_store, now=now)
    where = f" from {snap.source.display}" if isinstance(snap.source, HostSource) else " (PEM)"
    if first:
        verb = "decoded" if isinstance(snap.source, PemSource) else "retrieved"
        result.note = (
            f"SSL certificate details {verb}{where}: "
            f"Common Name {snap.details.common_name or '(none)'}, "
            f"valid until {snap.details.valid_until.isoformat()}."
        )
    elif changes:
        result.note = f"SSL certificate details updated{where}: {describe_changes(changes)}."
    else:
        result.note = f"SSL certificate details checked{where}: no changes."
    add_note(session, device, result.note, author=author, now=now)
    result.next_update = reschedule(session, device, outcome=Outcome.OK, now=now)
    return result


def _fill_record(record: SslDetailsRecord, snap: CertificateSnapshot) -> None:
    d = snap.details
    record.common_name = d.common_name
    record.valid_from = d.valid_from
    record.valid_until = d.valid_until
    record.issued_by = d.issued_by
    record.organization = d.organization
    record.organizational_unit = d.organizational_unit
    record.location = d.location
    record.serial_number = d.serial_number
    record.signature_algorithm = d.signature_algorithm
    record.subject_alternative_names = list(d.subject_alternative_names)
    record.fingerprint_sha256 = d.fingerprint_sha256
    record.chain_pem = chain_to_pem(snap.chain)
    record.chain_length = len(snap.chain)
    record.trusted = snap.verdict.trusted
    record.trust_error = snap.verdict.reason
    record.hostname_matches = snap.hostname_matches
    record.address = snap.address
    record.protocol = snap.protocol
    record.retrieved_at = snap.retrieved_at


def store_raw(
    session: Session, device: Device, raw: RawContent, *, raw_store: RawStore, now: datetime
) -> RawFile:
    """Write the blob first (content-addressed, never overwritten), then its row."""
    assert device.id is not None
    blob = raw_store.put(raw.content)
    row = RawFile(
        device_id=device.id,
        created_at=now,
        file_name=raw.file_name,
        content_type=raw.content_type,
        size_bytes=blob.size_bytes,
        sha256=blob.sha256,
    )
    session.add(row)
    session.flush()
    return row


def add_note(session: Session, device: Device, text: str, *, author: str, now: datetime) -> None:
    assert device.id is not None
    session.add(ActivityNote(device_id=device.id, created_at=now, author=author, text=text))


def reschedule(
    session: Session, device: Device, *, outcome: Outcome, now: datetime
) -> NextUpdate | None:
    """Create, move or delete the device's auto-updating job after an update or an edit."""
    assert device.id is not None
    job = session.get(UpdateJob, device.id)
    wanted = job_wanted(
        category=device.category,
        active=device.active,
        ssl_source_kind=device.ssl_source_kind,
        domain=device.domain,
        tracking_enabled=tracking_enabled(session),
    )
    if not wanted:
        if job is not None:
            session.delete(job)
        return None
    planned = next_update(expires_at=device.expires_at, now=now, outcome=outcome)
    if job is None:
        job = UpdateJob(
            device_id=device.id,
            due_at=planned.due_at,
            interval_seconds=int(planned.interval.total_seconds()),
            reason=planned.reason,
        )
    job.due_at = planned.due_at
    job.interval_seconds = int(planned.interval.total_seconds())
    job.reason = planned.reason
    job.claimed_by = None
    job.claimed_until = None
    session.add(job)
    return planned


def sync_job(session: Session, device: Device, *, now: datetime) -> NextUpdate | None:
    """After activation, inactivation or an expiry edit: the job follows the rules again.

    A device whose last update failed keeps its one-hour retry.
    """
    outcome = Outcome.FAILED if device.last_update_error else Outcome.OK
    return reschedule(session, device, outcome=outcome, now=now)


def record_failure(
    session: Session, device: Device, error: DstrackError, *, what: str, author: str, now: datetime
) -> AuditResult:
    """A failed update: the previous audit stays, the error is recorded, a retry in one hour."""
    assert device.id is not None
    device.last_update_error = error.message
    session.add(device)
    result = AuditResult(device_id=device.id, error=error)
    result.note = f"{what} update failed: {error.message}"
    add_note(session, device, result.note, author=author, now=now)
    result.next_update = reschedule(session, device, outcome=Outcome.FAILED, now=now)
    return result


# --- the use case --------------------------------------------------------------------------


def _ensure_retrieval_allowed(session: Session, source: SslSource | None) -> None:
    if isinstance(source, HostSource) and not tracking_enabled(session):
        raise ValidationError(ErrorCode.TRACKING_DISABLED)


async def update_audit(services: Services, device_id: int, *, author: str) -> AuditResult:
    """Refresh one device's audit now (forced update, Save & Update, scheduled refresh).

    Raises ``DstrackError`` only when the update cannot start (unknown device, a category
    without an audit, tracking disabled for a host); a failed retrieval is recorded on the
    device and returned in ``AuditResult.error``.
    """
    with reader(services.engine) as session:
        device = session.get(Device, device_id)
        if device is None:
            raise not_found("id", "Device")
        if device.category != DeviceCategory.SSL_CERTIFICATE:
            raise ValidationError(
                ErrorCode.INVALID_INPUT,
                "Only Domain and SSL Certificate devices have details to update.",
            )
        source = source_of(device)
        _ensure_retrieval_allowed(session, source)
    if source is None:
        raise ValidationError(ErrorCode.INVALID_INPUT, "The device has no SSL Source.")
    try:
        snap = await retrieve_certificate(services, source)
    except DstrackError as error:
        with transaction(services.engine) as session:
            device = session.get(Device, device_id)
            if device is None:
                raise not_found("id", "Device") from error
            return record_failure(
                session, device, error, what="SSL certificate", author=author, now=clock.now()
            )
    with transaction(services.engine) as session:
        device = session.get(Device, device_id)
        if device is None:
            raise not_found("id", "Device")
        return apply_certificate(
            session, device, snap, raw_store=services.raw_store, author=author, now=clock.now()
        )


async def update_many(
    services: Services,
    device_ids: Sequence[int],
    *,
    author: str,
    concurrency: int = 8,
) -> list[AuditResult]:
    """Update several devices with at most ``concurrency`` retrievals in flight, in input order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(device_id: int) -> AuditResult:
        async with gate:
            try:
                return await update_audit(services, device_id, author=author)
            except DstrackError as error:
                return AuditResult(device_id=device_id, error=error)

    return list(await asyncio.gather(*(one(i) for i in device_ids)))


def result_message(result: AuditResult) -> str:
    """The confirmation a person sees after a forced update, or the error."""
    if result.error is not None:
        return result.error.message
    return DOMAIN_UPDATED_MESSAGE if result.is_domain else SSL_UPDATED_MESSAGE
