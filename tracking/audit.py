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
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlmodel import Session

from models import Device, DeviceCategory
from models.db import reader, transaction
from tracking import clock
from tracking.audit_records import (
    AuditResult,
    RawContent,
    add_note,
    record_failure,
    reschedule,
    store_raw,
    sync_job,
)
from tracking.certificate_audit import (
    CertificateSnapshot,
    apply_certificate,
    retrieve_certificate,
    source_of,
)
from tracking.domain_audit import DomainSnapshot, apply_domain, retrieve_domain
from tracking.errors import DstrackError, ErrorCode, ValidationError
from tracking.inventory import not_found, tracking_enabled
from tracking.services import Services
from tracking.sources import HostSource, SslSource

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
    "retrieve_certificate",
    "retrieve_domain",
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


async def update_audit(services: Services, device_id: int, *, author: str) -> AuditResult:
    """Refresh one device's audit now (forced update, Save & Update, scheduled refresh).

    Raises ``DstrackError`` only when the update cannot start (unknown device, a category
    without an audit, tracking disabled for a host or domain); a failed retrieval is recorded
    on the device and returned in ``AuditResult.error``.
    """
    with reader(services.engine) as session:
        device = session.get(Device, device_id)
        if device is None:
            raise not_found("id", "Device")
        target = audit_target(session, device)

    if isinstance(target, str):
        domain_snap = await retrieve_domain(services, target)
        return _save(
            services,
            device_id,
            lambda session, device: apply_domain(
                session,
                device,
                domain_snap,
                raw_store=services.raw_store,
                author=author,
                now=clock.now(),
            ),
            what="Domain",
            author=author,
        )
    try:
        snap = await retrieve_certificate(services, target)
    except DstrackError as error:
        with transaction(services.engine) as session:
            device = _still_there(session, device_id)
            return record_failure(
                session, device, error, what="SSL certificate", author=author, now=clock.now()
            )
    return _save(
        services,
        device_id,
        lambda session, device: apply_certificate(
            session, device, snap, raw_store=services.raw_store, author=author, now=clock.now()
        ),
        what="SSL certificate",
        author=author,
    )


def _save(
    services: Services,
    device_id: int,
    apply: Callable[[Session, Device], AuditResult],
    *,
    what: str,
    author: str,
) -> AuditResult:
    """Write an update in one transaction; if that fails, the previous audit stays intact and
    the error is recorded on the device in a second, small transaction."""
    try:
        with transaction(services.engine) as session:
            return apply(session, _still_there(session, device_id))
    except DstrackError:
        raise
    except Exception as exc:
        log.exception("saving the update of device %s failed", device_id)
        # A database error's text carries the SQL and its parameters (whole certificate
        # chains): the device shows only the driver's own message; the log has the rest.
        reason = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
        error = DstrackError(ErrorCode.SAVE_FAILED, f"The update could not be saved: {reason}")
        with transaction(services.engine) as session:
            device = _still_there(session, device_id)
            return record_failure(session, device, error, what=what, author=author, now=clock.now())


def _still_there(session: Session, device_id: int) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise not_found("id", "Device")
    return device


async def update_many(
    services: Services,
    device_ids: Sequence[int],
    *,
    author: str,
    concurrency: int = 8,
) -> list[AuditResult]:
    """Update several devices with at most ``concurrency`` look-ups in flight, in input order.

    One device failing never stops the others: its error is in its result.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(device_id: int) -> AuditResult:
        async with gate:
            try:
                return await update_audit(services, device_id, author=author)
            except DstrackError as error:
                return AuditResult(device_id=device_id, error=error)
            except Exception:
                # A bug or a database outage must not take the other devices' results with it
                # (gather would raise, leaving their updates running unawaited).
                log.exception("updating device %s failed unexpectedly", device_id)
                unexpected = DstrackError(
                    ErrorCode.UPDATE_FAILED, "The update failed unexpectedly; the error was logged."
                )
                return AuditResult(device_id=device_id, error=unexpected)

    return list(await asyncio.gather(*(one(i) for i in device_ids)))


def result_message(result: AuditResult) -> str:
    """The confirmation a person sees after a forced update, or the error."""
    # A domain whose DNS alone failed was still updated; its errors say what is missing.
    if result.error is not None and result.error.code != ErrorCode.DNS_LOOKUP_FAILED:
        return result.error.message
    return DOMAIN_UPDATED_MESSAGE if result.is_domain else SSL_UPDATED_MESSAGE
