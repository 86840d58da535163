"""The one audit use case: probe -> decode -> diff with the last audit -> store -> RAW file ->
Activity note -> next update.

Every path goes through here: device creation, a forced update, "Save & Update" and the
scheduled refresh in Dagster. The network part runs first, outside any transaction; what it
learned is then written in one transaction, so a failure half-way leaves the previous audit
intact and only records the error on the device.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import Device, DeviceCategory, DomainDetailsRecord, SslDetailsRecord, UpdateJob
from models.db import reader, transaction
from tracking.core import clock
from tracking.core.errors import DstrackError, ErrorCode, ValidationError, not_found
from tracking.core.sources import HostSource, SslSource
from tracking.probes.ares import shared_channels
from tracking.refresh.certificate import (
    CertificateSnapshot,
    apply_certificate,
    retrieve_certificate,
    source_of,
)
from tracking.refresh.domain import DomainSnapshot, apply_domain, retrieve_domain
from tracking.refresh.rawstore import RawStore
from tracking.refresh.records import (
    AuditResult,
    RawContent,
    add_note,
    record_failure,
    reschedule,
    store_raw,
    sync_job,
)
from tracking.refresh.services import Services
from tracking.refresh.switch import tracking_enabled
from tracking.refresh.unchanged import write_unchanged

log = logging.getLogger(__name__)

SYSTEM_AUTHOR = "System"
SSL_UPDATED_MESSAGE = "The SSL certificate was updated."
DOMAIN_UPDATED_MESSAGE = "The domain was updated."

__all__ = [
    "AuditResult",
    "CertificateSnapshot",
    "DomainSnapshot",
    "RawContent",
    "add_note",
    "apply_certificate",
    "apply_domain",
    "audit_target",
    "record_failure",
    "reschedule",
    "result_message",
    "retrieve",
    "retrieve_certificate",
    "retrieve_domain",
    "save",
    "store_raw",
    "sync_job",
    "update_audit",
    "update_many",
]


def _is_wildcard(domain: str | None) -> bool:
    return (domain or "").startswith("*.")


def audit_target(session: Session, device: Device) -> SslSource | str:
    """What to look up for the device, checking that a look-up is allowed now."""
    if device.category == DeviceCategory.SSL_CERTIFICATE:
        source = source_of(device)
        if source is None:
            raise ValidationError(ErrorCode.INVALID_INPUT, "The device has no SSL Source.")
        if isinstance(source, HostSource) and not tracking_enabled(session):
            raise ValidationError(ErrorCode.TRACKING_DISABLED)
        return source
    if device.category == DeviceCategory.DOMAIN and device.domain:
        if _is_wildcard(device.domain):
            raise ValidationError(
                ErrorCode.INVALID_INPUT,
                "No details are retrieved for a wildcard domain.",
            )
        if not tracking_enabled(session):
            raise ValidationError(ErrorCode.TRACKING_DISABLED)
        return device.domain
    raise ValidationError(
        ErrorCode.INVALID_INPUT, "Only Domain and SSL Certificate devices have details to update."
    )


@dataclass(frozen=True)
class Retrieved:
    """What one device's look-up gave, ready to be written (exactly one of the three)."""

    device_id: int
    what: str  # "SSL certificate" or "Domain", for notes
    certificate: CertificateSnapshot | None = None
    domain: DomainSnapshot | None = None
    failure: DstrackError | None = None

    def apply(
        self, session: Session, device: Device, *, raw_store: RawStore, author: str
    ) -> AuditResult:
        now = clock.now()
        if self.failure is not None:
            return record_failure(
                session, device, self.failure, what=self.what, author=author, now=now
            )
        if self.domain is not None:
            return apply_domain(
                session, device, self.domain, raw_store=raw_store, author=author, now=now
            )
        assert self.certificate is not None
        return apply_certificate(
            session, device, self.certificate, raw_store=raw_store, author=author, now=now
        )


def _targets(
    services: Services, device_ids: Sequence[int]
) -> dict[int, SslSource | str | DstrackError]:
    """What to look up for each device (or why it can't be), read in one query."""
    wanted = sorted(set(device_ids))
    with reader(services.engine) as session:
        devices = {d.id: d for d in session.exec(select(Device).where(col(Device.id).in_(wanted)))}
        targets: dict[int, SslSource | str | DstrackError] = {}
        for device_id in wanted:
            device = devices.get(device_id)
            try:
                if device is None:
                    raise not_found("id", "Device")
                targets[device_id] = audit_target(session, device)
            except DstrackError as error:
                targets[device_id] = error
    return targets


async def retrieve(services: Services, device_id: int, target: SslSource | str) -> Retrieved:
    """The network part of an update; a failed look-up is a result, not an exception."""
    if isinstance(target, str):
        return Retrieved(device_id, "Domain", domain=await retrieve_domain(services, target))
    try:
        snap = await retrieve_certificate(services, target)
    except DstrackError as error:
        return Retrieved(device_id, "SSL certificate", failure=error)
    return Retrieved(device_id, "SSL certificate", certificate=snap)


def save(services: Services, retrieved: Sequence[Retrieved], *, author: str) -> list[AuditResult]:
    """Write several updates in one transaction (those that found their certificate unchanged
    with a few statements for all, see ``tracking.refresh.unchanged``). If that fails, each
    is written in its own, so one device's failure never loses the others' updates and each
    failure is recorded."""
    if len(retrieved) > 1:
        try:
            with transaction(services.engine) as session, session.no_autoflush:
                snapshots = [(r.device_id, r.certificate) for r in retrieved if r.certificate]
                unchanged = write_unchanged(session, snapshots, author=author, now=clock.now())
                rest = [r for r in retrieved if r.device_id not in unchanged]
                loaded = _preload(session, rest) if rest else []  # noqa: F841
                written = {
                    r.device_id: r.apply(
                        session,
                        _still_there(session, r.device_id),
                        raw_store=services.raw_store,
                        author=author,
                    )
                    for r in rest
                }
                return [unchanged.get(r.device_id) or written[r.device_id] for r in retrieved]
        except Exception:
            log.info("a batch of %d updates is written one by one", len(retrieved), exc_info=True)
    return [_save_one(services, r, author=author) for r in retrieved]


def _preload(session: Session, retrieved: Sequence[Retrieved]) -> list[Any]:
    """Load what the updates will read into the session, a query per table instead of per row
    (and no query for a kind of details no update in the batch writes).

    The session's identity map holds rows weakly: keep the returned list while they are used.
    """
    every = [r.device_id for r in retrieved]
    certificates = [r.device_id for r in retrieved if r.certificate is not None]
    domains = [r.device_id for r in retrieved if r.domain is not None]
    tables: list[tuple[Any, Any, list[int]]] = [
        (Device, Device.id, every),
        (UpdateJob, UpdateJob.device_id, every),
        (SslDetailsRecord, SslDetailsRecord.device_id, certificates),
        (DomainDetailsRecord, DomainDetailsRecord.device_id, domains),
    ]
    rows: list[Any] = []
    for model, key, device_ids in tables:
        if device_ids:
            rows += session.exec(select(model).where(col(key).in_(device_ids))).all()
    tracking_enabled(session)
    return rows


def _save_one(services: Services, retrieved: Retrieved, *, author: str) -> AuditResult:
    """One update in one transaction; if that fails, the previous audit stays intact and the
    error is recorded on the device in a second, small transaction."""
    device_id = retrieved.device_id
    try:
        with transaction(services.engine) as session:
            device = _still_there(session, device_id)
            return retrieved.apply(session, device, raw_store=services.raw_store, author=author)
    except DstrackError as error:  # the device went away meanwhile
        return AuditResult(device_id=device_id, error=error, is_domain=retrieved.what == "Domain")
    except Exception as exc:
        log.exception("saving the update of device %s failed", device_id)
        # A database error's text carries the SQL and its parameters (whole certificate
        # chains): the device shows only the driver's own message; the log has the rest.
        reason = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
        failure = DstrackError(ErrorCode.SAVE_FAILED, f"The update could not be saved: {reason}")
        with transaction(services.engine) as session:
            device = _still_there(session, device_id)
            return record_failure(
                session, device, failure, what=retrieved.what, author=author, now=clock.now()
            )


def _still_there(session: Session, device_id: int) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise not_found("id", "Device")
    return device


async def update_audit(services: Services, device_id: int, *, author: str) -> AuditResult:
    """Refresh one device's audit now (forced update, Save & Update, scheduled refresh).

    Raises ``DstrackError`` only when the update cannot start (unknown device, a category
    without an audit, tracking disabled for a host or domain); a failed retrieval is recorded
    on the device and returned in ``AuditResult.error``.
    """
    target = _targets(services, [device_id])[device_id]
    if isinstance(target, DstrackError):
        raise target
    return _save_one(services, await retrieve(services, device_id, target), author=author)


def _unexpected(device_id: int) -> AuditResult:
    log.exception("updating device %s failed unexpectedly", device_id)
    error = DstrackError(
        ErrorCode.UPDATE_FAILED, "The update failed unexpectedly; the error was logged."
    )
    return AuditResult(device_id=device_id, error=error)


async def update_many(
    services: Services,
    device_ids: Sequence[int],
    *,
    author: str,
    concurrency: int = 8,
    batch_size: int = 64,
) -> list[AuditResult]:
    """Update several devices with at most ``concurrency`` look-ups in flight; results in
    input order. Finished look-ups are written ``batch_size`` at a time (see :func:`save`).

    One device failing never stops the others: its error is in its result.
    """
    targets = _targets(services, device_ids)
    results: dict[int, AuditResult] = {}
    pending: list[Retrieved] = []

    def flush() -> None:
        batch = pending[:]
        pending.clear()
        try:
            for result in save(services, batch, author=author):
                results[result.device_id] = result
        except Exception:
            # A bug or a database outage must not take the other devices' results with it.
            for item in batch:
                results[item.device_id] = _unexpected(item.device_id)

    to_retrieve = []
    for device_id, target in targets.items():
        if isinstance(target, DstrackError):
            results[device_id] = AuditResult(device_id=device_id, error=target)
        else:
            to_retrieve.append((device_id, target))
    queue = iter(to_retrieve)

    async def worker() -> None:
        # ``concurrency`` workers take the next device from one iterator: as many look-ups
        # in flight, without a task and a semaphore wait per device.
        for device_id, target in queue:
            try:
                retrieved = await retrieve(services, device_id, target)
            except Exception:
                results[device_id] = _unexpected(device_id)
                continue
            pending.append(retrieved)
            if len(pending) >= batch_size:
                flush()

    with shared_channels():  # one c-ares channel for the batch's host look-ups
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(to_retrieve)))))
    flush()
    return [results[i] for i in device_ids]


def result_message(result: AuditResult) -> str:
    """The confirmation a person sees after a forced update, or the error."""
    # A domain whose DNS alone failed was still updated; its errors say what is missing.
    if result.error is not None and result.error.code != ErrorCode.DNS_LOOKUP_FAILED:
        return result.error.message
    return DOMAIN_UPDATED_MESSAGE if result.is_domain else SSL_UPDATED_MESSAGE
