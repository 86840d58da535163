"""Writing what an update learned: results, RAW files, Activity notes and the job.

Shared by the certificate and the domain audits; every function works inside the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, SQLModel

from models import ActivityNote, Device, RawFile, UpdateJob
from tracking.core.errors import DstrackError
from tracking.core.schedule import NextUpdate, Outcome, job_wanted, next_update
from tracking.refresh.rawstore import RawStore
from tracking.refresh.switch import tracking_enabled

Change = tuple[str, str | None, str | None]


@dataclass(frozen=True)
class RawContent:
    file_name: str
    content_type: str
    content: bytes


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


def assign(row: SQLModel, **values: object) -> None:
    """Set the columns whose value differs. Setting an equal value would change nothing and
    still cost SQLModel's per-attribute work, which adds up over a refresh of unchanged rows."""
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def describe_changes(changes: Iterable[Change]) -> str:
    return "; ".join(
        f"{label}: {old or '(none)'} → {new or '(none)'}" for label, old, new in changes
    )


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
    assign(
        job,
        due_at=planned.due_at,
        interval_seconds=int(planned.interval.total_seconds()),
        reason=planned.reason,
        claimed_by=None,
        claimed_until=None,
    )
    session.add(job)
    return planned


def sync_job(session: Session, device: Device, *, now: datetime) -> NextUpdate | None:
    """After activation, inactivation or an expiry edit: the job follows the rules again.

    A device whose last update failed keeps its one-hour retry.
    """
    outcome = Outcome.FAILED if device.last_update_error else Outcome.OK
    return reschedule(session, device, outcome=outcome, now=now)


def record_failure(
    session: Session,
    device: Device,
    error: DstrackError,
    *,
    what: str,
    author: str,
    now: datetime,
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
