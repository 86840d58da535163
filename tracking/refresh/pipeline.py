"""The update pipeline: probe -> decode -> diff with the last audit -> one write -> subscribers.

Every update goes through here: device creation, a forced update, "Save & Update", a manual
registration entry, an import row and the scheduled refresh in Dagster. The network part runs
first, outside any transaction; what it learned is then planned (``Planned``: one event per
device) and written in one transaction with a few statements for the whole batch, after which
the subscribers (RAW files, Activity notes, and whoever ``Services`` adds) see the events in the
same transaction. A failure half-way leaves the previous audit intact and only records the
error on the device.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import Device, DeviceCategory
from models.db import reader, transaction
from tracking.core import clock
from tracking.core.changes import Change
from tracking.core.errors import DstrackError, ErrorCode, ValidationError, not_found
from tracking.core.schedule import NextUpdate, Outcome
from tracking.core.sources import HostSource, SslSource
from tracking.probes.ares import shared_channels
from tracking.refresh.certificate import (
    CertificateSnapshot,
    plan_certificate,
    retrieve_certificate,
    source_of,
)
from tracking.refresh.domain import (
    DomainSnapshot,
    plan_domain,
    plan_manual_registration,
    retrieve_domain,
)
from tracking.refresh.events import StoredRawFile, UpdateBatch, UpdateEvent, UpdateSubscriber
from tracking.refresh.records import ActivityNotes, RawFiles
from tracking.refresh.services import Services
from tracking.refresh.state import Stored, read_state
from tracking.refresh.switch import tracking_enabled
from tracking.refresh.writes import Plan, Planned, write_planned

log = logging.getLogger(__name__)

SSL_UPDATED_MESSAGE = "The SSL certificate was updated."
DOMAIN_UPDATED_MESSAGE = "The domain was updated."


@dataclass(frozen=True)
class ManualRegistration:
    """Registration details a person typed (``updateDevice`` with expiresAt / registrar)."""

    expires_at: datetime | None
    registrar: str | None


@dataclass(frozen=True)
class Retrieved:
    """What one device's look-up gave (exactly one of the four), ready to be written."""

    device_id: int
    what: str  # "SSL certificate" or "Domain", for notes
    certificate: CertificateSnapshot | None = None
    domain: DomainSnapshot | None = None
    manual: ManualRegistration | None = None
    failure: DstrackError | None = None
    seconds: float | None = None  # time spent retrieving

    @property
    def is_domain(self) -> bool:
        return self.what == "Domain"


@dataclass
class AuditResult:
    device_id: int
    changed: bool = False
    first: bool = False
    changes: list[Change] = field(default_factory=list)
    note: str = ""
    raw_file: StoredRawFile | None = None
    error: DstrackError | None = None
    next_update: NextUpdate | None = None
    is_domain: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


async def retrieve(services: Services, device_id: int, target: SslSource | str) -> Retrieved:
    """The network part of an update; a failed look-up is a result, not an exception."""
    started = time.perf_counter()
    if isinstance(target, str):
        domain = await retrieve_domain(services, target)
        return Retrieved(device_id, "Domain", domain=domain, seconds=_since(started))
    try:
        snap = await retrieve_certificate(services, target, pem_revocation=True)
    except DstrackError as error:
        return Retrieved(device_id, "SSL certificate", failure=error, seconds=_since(started))
    return Retrieved(device_id, "SSL certificate", certificate=snap, seconds=_since(started))


def _since(started: float) -> float:
    return time.perf_counter() - started


def apply_updates(
    session: Session,
    services: Services,
    items: Sequence[Retrieved],
    *,
    author: str,
    now: datetime | None = None,
    only_own_subscribers: bool = False,
) -> list[AuditResult]:
    """Plan and write ``items`` in the caller's transaction and tell the subscribers; results
    in input order. ORM objects the session held are stale afterwards: read them again."""
    now = now or clock.now()
    session.flush()
    state = read_state(
        session,
        [i.device_id for i in items],
        ssl_ids=[i.device_id for i in items if i.certificate is not None],
        domain_ids=[i.device_id for i in items if i.domain is not None or i.manual is not None],
    )
    planned: list[Planned] = []
    results: dict[int, AuditResult] = {}
    for item in items:
        stored = state.devices.get(item.device_id)
        if stored is None:  # the device went away meanwhile
            error = not_found("id", "Device")
            results[item.device_id] = AuditResult(item.device_id, error=error)
            continue
        planned.append(plan_update(item, stored, author=author, now=now))
    next_updates = write_planned(session, state, planned, now=now)
    batch = UpdateBatch(session, [p.event for p in planned], now)
    own: tuple[UpdateSubscriber, ...] = (RawFiles(services.raw_store), ActivityNotes())
    for subscriber in own if only_own_subscribers else (*own, *services.subscribers):
        subscriber.on_updates(batch)
    for done in planned:
        device_id = done.event.device_id
        results[device_id] = _result(done, next_updates[device_id], batch.raw_files.get(device_id))
    return [results[i.device_id] for i in items]


def plan_update(item: Retrieved, stored: Stored, *, author: str, now: datetime) -> Planned:
    """The event of one update and what it writes."""
    device = stored.device
    plan = _plan(item, stored)
    values = dict(plan.device_values)
    failed = plan.outcome is Outcome.FAILED
    failures = device.consecutive_failures
    if item.manual is None:  # a retrieval, not a person's entry
        failures = failures + 1 if failed else 0
        values["consecutive_failures"] = failures
        if item.failure is None:
            values["last_updated_at"] = now
    expires_at = values.get("expires_at", device.expires_at)
    event = UpdateEvent(
        device_id=item.device_id,
        category=device.category,
        first=plan.first,
        changes=plan.changes,
        error=plan.error,
        failed=failed,
        note=plan.note,
        raw=plan.raw,
        expires_at=expires_at,  # type: ignore[arg-type]
        previous_expires_at=device.expires_at,
        consecutive_failures=failures,
        at=now,
        author=author,
        retrieval_seconds=item.seconds,
        previous_consecutive_failures=device.consecutive_failures,
    )
    return Planned(event, values, plan.details, plan.outcome)


def _plan(item: Retrieved, stored: Stored) -> Plan:
    if item.certificate is not None:
        return plan_certificate(stored.ssl, item.certificate)
    if item.domain is not None:
        return plan_domain(stored.domain, item.domain)
    if item.manual is not None:
        manual = item.manual
        return plan_manual_registration(
            stored.domain, expires_at=manual.expires_at, registrar=manual.registrar
        )
    assert item.failure is not None
    return plan_failure(item.what, item.failure)


def plan_failure(what: str, error: DstrackError) -> Plan:
    """A failed update: the previous audit stays, the error is recorded, a retry in one hour."""
    return Plan(
        first=False,
        changes=(),
        note=f"{what} update failed: {error.message}",
        raw=None,
        details=None,
        device_values={"last_update_error": error.message},
        outcome=Outcome.FAILED,
        error=error,
    )


def _result(
    item: Planned, next_update: NextUpdate | None, raw: StoredRawFile | None
) -> AuditResult:
    event = item.event
    return AuditResult(
        device_id=event.device_id,
        changed=event.changed,
        first=event.first,
        changes=list(event.changes),
        note=event.note or "",
        raw_file=raw,
        error=event.error,
        next_update=next_update,
        is_domain=event.category == DeviceCategory.DOMAIN,
    )


# --- targets: what to look up for each device -------------------------------------------------


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
        if device.domain.startswith("*."):
            raise ValidationError(
                ErrorCode.INVALID_INPUT, "No details are retrieved for a wildcard domain."
            )
        if not tracking_enabled(session):
            raise ValidationError(ErrorCode.TRACKING_DISABLED)
        return device.domain
    raise ValidationError(
        ErrorCode.INVALID_INPUT, "Only Domain and SSL Certificate devices have details to update."
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


# --- saving -------------------------------------------------------------------------------------


def save(services: Services, retrieved: Sequence[Retrieved], *, author: str) -> list[AuditResult]:
    """Write several updates in one transaction. If that fails, each is written in its own, so
    one device's failure never loses the others' updates and each failure is recorded."""
    if len(retrieved) > 1:
        try:
            with transaction(services.engine) as session:
                return apply_updates(session, services, retrieved, author=author)
        except Exception:
            log.info("a batch of %d updates is written one by one", len(retrieved), exc_info=True)
    return [_save_one(services, r, author=author) for r in retrieved]


def _save_one(services: Services, retrieved: Retrieved, *, author: str) -> AuditResult:
    """One update in one transaction; if that fails, the previous audit stays intact and the
    error is recorded on the device in a second, small transaction."""
    try:
        with transaction(services.engine) as session:
            (result,) = apply_updates(session, services, [retrieved], author=author)
            return result
    except DstrackError as error:  # e.g. the RAW file could not be stored
        failure = error
    except Exception as exc:
        log.exception("saving the update of device %s failed", retrieved.device_id)
        failure = save_failure(exc)
    recorded = [Retrieved(retrieved.device_id, retrieved.what, failure=failure)]
    try:
        with transaction(services.engine) as session:
            return apply_updates(session, services, recorded, author=author)[0]
    except Exception:  # a subscriber that fails every time must not hide the failure
        log.exception("recording the failed update of device %s failed", retrieved.device_id)
    with transaction(services.engine) as session:
        return apply_updates(session, services, recorded, author=author, only_own_subscribers=True)[
            0
        ]


def save_failure(exc: Exception) -> DstrackError:
    """What the device shows of a write that failed. A database error's text carries the SQL
    and its parameters (whole certificate chains): only the driver's own message is shown, and
    the log has the rest."""
    reason = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    return DstrackError(ErrorCode.SAVE_FAILED, f"The update could not be saved: {reason}")


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


class _BatchWriter:
    """Writes finished look-ups ``batch_size`` at a time, in place or in a thread (one batch at
    a time), keeping every device's result."""

    def __init__(self, services: Services, author: str, *, batch_size: int, off_loop: bool):
        self.services = services
        self.author = author
        self.batch_size = batch_size
        self.off_loop = off_loop
        self.results: dict[int, AuditResult] = {}
        self.pending: list[Retrieved] = []
        self.one_at_a_time = asyncio.Lock()

    async def add(self, retrieved: Retrieved) -> None:
        self.pending.append(retrieved)
        if len(self.pending) >= self.batch_size:
            await self.flush()

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        if not self.off_loop:
            self._write(batch)
            return
        async with self.one_at_a_time:
            await asyncio.to_thread(self._write, batch)  # the context (a test's clock) goes along

    def _write(self, batch: list[Retrieved]) -> None:
        try:
            for result in save(self.services, batch, author=self.author):
                self.results[result.device_id] = result
        except Exception:
            # A bug or a database outage must not take the other devices' results with it.
            for item in batch:
                self.results[item.device_id] = _unexpected(item.device_id)


async def update_many(
    services: Services,
    device_ids: Sequence[int],
    *,
    author: str,
    concurrency: int = 16,
    batch_size: int = 64,
    writes_off_loop: bool = False,
) -> list[AuditResult]:
    """Update several devices with at most ``concurrency`` look-ups in flight; results in
    input order. Finished look-ups are written ``batch_size`` at a time (see :func:`save`).

    With ``writes_off_loop`` (a server answering people meanwhile) each write batch runs in a
    thread, one at a time, so the event loop keeps serving requests and look-ups during it; a
    refresh run alone on its loop writes in place, which costs less CPU.

    One device failing never stops the others: its error is in its result.
    """
    writer = _BatchWriter(services, author, batch_size=batch_size, off_loop=writes_off_loop)
    to_retrieve = []
    for device_id, target in _targets(services, device_ids).items():
        if isinstance(target, DstrackError):
            writer.results[device_id] = AuditResult(device_id=device_id, error=target)
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
                writer.results[device_id] = _unexpected(device_id)
                continue
            await writer.add(retrieved)

    with shared_channels():  # one c-ares channel for the batch's host look-ups
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(to_retrieve)))))
    await writer.flush()
    return [writer.results[i] for i in device_ids]


def result_message(result: AuditResult) -> str:
    """The confirmation a person sees after a forced update, or the error."""
    # A domain whose DNS alone failed was still updated; its errors say what is missing.
    if result.error is not None and result.error.code != ErrorCode.DNS_LOOKUP_FAILED:
        return result.error.message
    return DOMAIN_UPDATED_MESSAGE if result.is_domain else SSL_UPDATED_MESSAGE
