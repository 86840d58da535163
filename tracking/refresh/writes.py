"""The one write path of an update: a batch of planned updates becomes a few statements.

Every update - a first audit, a change, an unchanged refresh, a failure, a manual entry - is
planned the same way (``Planned``: the event, the device's new values, its details) and written
here with one executemany per table and column set, inside the caller's transaction. Only the
columns whose value differs are written, so an unchanged refresh costs a few small statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from models.tables import DEVICES
from models.tables import UPDATE_JOBS as JOBS
from tracking.core.changes import Change
from tracking.core.errors import DstrackError
from tracking.core.schedule import NextUpdate, Outcome, job_wanted, next_update
from tracking.refresh.events import RawContent, UpdateEvent
from tracking.refresh.state import BatchState, Stored, read_state


@dataclass(frozen=True)
class DetailsWrite:
    """The details row of an update: inserted for a first audit, else its changed columns."""

    table: sa.Table
    values: dict[str, object]  # every column of the row but the key


@dataclass(frozen=True)
class Plan:
    """What one update stores and says, as the certificate, domain or failure side decides it
    (the pipeline adds what every update shares and makes the event of it)."""

    first: bool
    changes: tuple[Change, ...]
    note: str | None  # None: nothing worth a note (a manual entry that changed nothing)
    raw: RawContent | None
    details: DetailsWrite | None
    device_values: dict[str, object]
    outcome: Outcome
    error: DstrackError | None = None


@dataclass(frozen=True)
class Planned:
    """An update as decided, ready to be written."""

    event: UpdateEvent
    device_values: dict[str, object]  # columns of ``devices`` after the update
    details: DetailsWrite | None
    outcome: Outcome  # for the schedule


def changed_values(
    old: Any, new: Mapping[str, object], *, always: Iterable[str] = ()
) -> dict[str, object]:
    """The entries of ``new`` that differ from the same-named attributes of ``old`` (a row),
    plus those named in ``always``."""
    kept = set(always)
    return {k: v for k, v in new.items() if k in kept or getattr(old, k) != v}


def write_planned(
    session: Session, state: BatchState, planned: Sequence[Planned], *, now: datetime
) -> dict[int, NextUpdate | None]:
    """Write the devices, their details and their jobs; the next update of each device."""
    device_rows = []
    for item in planned:
        stored = state.devices[item.event.device_id]
        values = changed_values(stored.device, item.device_values)
        if values:
            device_rows.append({"id": item.event.device_id, **values})
    update_rows(session, DEVICES, "id", device_rows)
    _write_details(session, state, planned)
    return write_jobs(
        session,
        state,
        {item.event.device_id: (item.outcome, item.event.expires_at) for item in planned},
        now=now,
    )


def _write_details(session: Session, state: BatchState, planned: Sequence[Planned]) -> None:
    inserts: dict[sa.Table, list[dict[str, object]]] = {}
    updates: dict[sa.Table, list[dict[str, object]]] = {}
    for item in planned:
        if item.details is None:
            continue
        device_id = item.event.device_id
        table = item.details.table
        old = _stored_details(state.devices[device_id], table)
        if old is None:
            inserts.setdefault(table, []).append({"device_id": device_id, **item.details.values})
        elif values := changed_values(old, item.details.values):
            updates.setdefault(table, []).append({"device_id": device_id, **values})
    for table, rows in inserts.items():
        session.execute(sa.insert(table), rows)
    for table, rows in updates.items():
        update_rows(session, table, "device_id", rows)


def _stored_details(stored: Stored, table: sa.Table) -> Any:
    return stored.ssl if table.name == "ssl_details" else stored.domain


def write_jobs(
    session: Session,
    state: BatchState,
    wanted: Mapping[int, tuple[Outcome, datetime | None]],
    *,
    now: datetime,
) -> dict[int, NextUpdate | None]:
    """Create, move or delete the auto-updating job of each device (outcome and expiry after
    its update or edit); moving a job also releases a refresh run's claim on it."""
    planned: dict[int, NextUpdate | None] = {}
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    deletes: list[int] = []
    for device_id, (outcome, expires_at) in wanted.items():
        stored = state.devices[device_id]
        device = stored.device
        if not job_wanted(
            category=device.category,
            active=device.active,
            ssl_source_kind=device.ssl_source_kind,
            domain=device.domain,
            tracking_enabled=state.tracking_enabled,
        ):
            planned[device_id] = None
            if stored.has_job:
                deletes.append(device_id)
            continue
        plan = planned[device_id] = next_update(expires_at=expires_at, now=now, outcome=outcome)
        row = {
            "device_id": device_id,
            "due_at": plan.due_at,
            "interval_seconds": int(plan.interval.total_seconds()),
            "reason": plan.reason,
            "claimed_by": None,
            "claimed_until": None,
        }
        (updates if stored.has_job else inserts).append(row)
    if inserts:
        session.execute(sa.insert(JOBS), inserts)
    update_rows(session, JOBS, "device_id", updates)
    if deletes:
        session.execute(sa.delete(JOBS).where(JOBS.c.device_id.in_(deletes)))
    return planned


def sync_jobs(
    session: Session, device_ids: Iterable[int], *, now: datetime
) -> dict[int, NextUpdate | None]:
    """After an edit (activation, expiry entered, tracking switched): each job follows the
    rules again. A device whose last update failed keeps its one-hour retry."""
    session.flush()
    state = read_state(session, list(device_ids))
    return write_jobs(
        session,
        state,
        {
            device_id: (
                Outcome.FAILED if stored.device.last_update_error else Outcome.OK,
                stored.device.expires_at,
            )
            for device_id, stored in state.devices.items()
        },
        now=now,
    )


def update_rows(
    session: Session, table: sa.Table, key: str, rows: Sequence[Mapping[str, object]]
) -> None:
    """``UPDATE table SET ... WHERE key = ?`` for every row, one executemany per column set
    (Core: the ORM's bulk UPDATE costs more per row than the statement itself)."""
    groups: dict[tuple[str, ...], list[Mapping[str, object]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(name for name in row if name != key)), []).append(row)
    for columns, group in groups.items():
        if not columns:
            continue
        statement = (
            sa.update(table)
            .where(table.c[key] == sa.bindparam(f"k_{key}"))
            .values({name: sa.bindparam(f"v_{name}") for name in columns})
        )
        session.execute(
            statement,
            [
                {f"k_{key}": row[key], **{f"v_{name}": row[name] for name in columns}}
                for row in group
            ],
        )
