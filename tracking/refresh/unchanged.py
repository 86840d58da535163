"""Refreshes that found the certificate unchanged, written for a whole batch at once.

Most scheduled refreshes find the certificate of last time ("SSL certificate details checked
...: no changes"). Such a refresh writes the same few columns for every device; doing that
through the ORM (load each row as an object, diff, flush the unit of work) cost a third of a
refresh's CPU. Here the batch's rows are read as plain rows and the writes are one executemany
statement per table. Everything else - a change, a first audit, a failure, a job to create or
delete - is left to ``tracking.refresh.certificate.apply_certificate`` and the other ORM paths;
both paths share the diff, the note and the schedule, so they write the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col

from models import ActivityNote, Device, SslDetailsRecord, UpdateJob
from tracking.core.schedule import Outcome, job_wanted, next_update
from tracking.refresh.certificate import CertificateSnapshot, certificate_changes, certificate_note
from tracking.refresh.records import AuditResult
from tracking.refresh.switch import tracking_enabled

# Core tables, as tracking.refresh.jobs has them: the writes below skip the ORM.
_devices = Device.__table__  # type: ignore[attr-defined]
_ssl_details = SslDetailsRecord.__table__  # type: ignore[attr-defined]
_notes = ActivityNote.__table__  # type: ignore[attr-defined]
_jobs = UpdateJob.__table__  # type: ignore[attr-defined]

# What the diff with the last audit reads (tracking.refresh.certificate.certificate_changes).
_DETAILS = [
    col(SslDetailsRecord.device_id),
    col(SslDetailsRecord.common_name),
    col(SslDetailsRecord.valid_from),
    col(SslDetailsRecord.valid_until),
    col(SslDetailsRecord.issued_by),
    col(SslDetailsRecord.organization),
    col(SslDetailsRecord.organizational_unit),
    col(SslDetailsRecord.location),
    col(SslDetailsRecord.serial_number),
    col(SslDetailsRecord.signature_algorithm),
    col(SslDetailsRecord.subject_alternative_names),
    col(SslDetailsRecord.fingerprint_sha256),
    col(SslDetailsRecord.chain_pem),
    col(SslDetailsRecord.chain_length),
    col(SslDetailsRecord.trusted),
    col(SslDetailsRecord.hostname_matches),
]


def write_unchanged(
    session: Session,
    snapshots: Sequence[tuple[int, CertificateSnapshot]],
    *,
    author: str,
    now: datetime,
) -> dict[int, AuditResult]:
    """Write, in the caller's transaction, the refreshes among ``snapshots`` (device id,
    snapshot) that changed nothing and keep an existing job; their results by device id.
    The others are left to the caller."""
    if not snapshots:
        return {}
    ids = [device_id for device_id, _ in snapshots]
    details = sa.select(*_DETAILS).where(_DETAILS[0].in_(ids))
    olds = {row.device_id: row for row in session.execute(details)}
    devices = {
        row.id: row
        for row in session.execute(
            sa.select(
                col(Device.id),
                col(Device.category),
                col(Device.active),
                col(Device.ssl_source_kind),
                col(Device.domain),
            ).where(col(Device.id).in_(ids))
        )
    }
    with_job = set(
        session.execute(
            sa.select(col(UpdateJob.device_id)).where(col(UpdateJob.device_id).in_(ids))
        ).scalars()
    )
    enabled = tracking_enabled(session)

    results: dict[int, AuditResult] = {}
    device_rows: list[dict[str, object]] = []
    detail_rows: list[dict[str, object]] = []
    note_rows: list[dict[str, object]] = []
    job_rows: list[dict[str, object]] = []
    for device_id, snap in snapshots:
        old, device = olds.get(device_id), devices.get(device_id)
        if old is None or device is None or device_id not in with_job:
            continue
        if certificate_changes(old, snap):
            continue
        wanted = job_wanted(
            category=device.category,
            active=device.active,
            ssl_source_kind=device.ssl_source_kind,
            domain=device.domain,
            tracking_enabled=enabled,
        )
        if not wanted:
            continue
        planned = next_update(expires_at=snap.details.valid_until, now=now, outcome=Outcome.OK)
        note = certificate_note(snap, first=False, changes=[])
        device_rows.append(
            {
                "id": device_id,
                "expires_at": snap.details.valid_until,
                "last_updated_at": now,
                "last_update_error": None,
            }
        )
        detail_rows.append(
            {
                "device_id": device_id,
                "trust_error": snap.verdict.reason,
                "address": snap.address,
                "protocol": snap.protocol,
                "retrieved_at": snap.retrieved_at,
            }
        )
        note_rows.append(
            {"device_id": device_id, "created_at": now, "author": author, "text": note}
        )
        job_rows.append(
            {
                "device_id": device_id,
                "due_at": planned.due_at,
                "interval_seconds": int(planned.interval.total_seconds()),
                "reason": planned.reason,
                "claimed_by": None,
                "claimed_until": None,
            }
        )
        results[device_id] = AuditResult(device_id=device_id, note=note, next_update=planned)

    if results:  # one executemany per table
        _update_by_key(session, _devices, "id", device_rows)
        _update_by_key(session, _ssl_details, "device_id", detail_rows)
        session.execute(sa.insert(_notes), note_rows)
        _update_by_key(session, _jobs, "device_id", job_rows)
    return results


def _update_by_key(
    session: Session, table: sa.Table, key: str, rows: list[dict[str, object]]
) -> None:
    """``UPDATE table SET ... WHERE key = ?`` for every row (Core executemany: the ORM's bulk
    UPDATE costs more per row than the statement itself)."""
    columns = [name for name in rows[0] if name != key]
    statement = (
        sa.update(table)
        .where(table.c[key] == sa.bindparam(f"k_{key}"))
        .values({name: sa.bindparam(f"v_{name}") for name in columns})
    )
    session.execute(
        statement,
        [{f"k_{key}": row[key], **{f"v_{name}": row[name] for name in columns}} for row in rows],
    )
