"""Auto-updating jobs as a work queue: which devices are due, and who is refreshing them.

``update_jobs`` holds one row per device that is refreshed on a schedule (the update
pipeline keeps it right: active, host-sourced SSL certificates and domains, while tracking is on). A
refresh run *claims* the rows it works on for a lease, so the same device is never in two runs
at once; rescheduling after an update clears the claim when it moves the job forward. A
run that ends without updating a device releases it (deferring it, so a device whose update cannot
even start is not picked up again on every tick).

Adapter-free: the Dagster sensor and op call these functions, tests call them directly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from models.db import reader, transaction
from models.tables import DEVICES as _devices
from models.tables import UPDATE_JOBS as _jobs
from tracking.core.schedule import RETRY_INTERVAL
from tracking.refresh.switch import tracking_enabled

# How long a claim holds a job. Covers a run's time in the run queue and its execution; a
# run that dies without releasing its devices lets them be picked up again after it.
CLAIM_LEASE = timedelta(hours=1)
# A device whose refresh could not even start (e.g. it vanished or changed category while
# queued) is looked at again after this long, not on the next tick.
DEFER_INTERVAL = RETRY_INTERVAL
CLAIMANT_MAX = 64  # UpdateJob.claimed_by


@dataclass(frozen=True, order=True)
class DueJob:
    """A due job's place in the queue: ordered by due time, then device."""

    due_at: datetime
    device_id: int


@dataclass(frozen=True)
class Batch:
    """Devices claimed together for one refresh run."""

    claimed_by: str
    device_ids: tuple[int, ...]
    first_due_at: datetime
    last_due_at: datetime


@dataclass(frozen=True)
class RunClaim:
    """What a run may refresh of the devices it was asked for."""

    claimed: tuple[int, ...]  # scheduled devices now held by this run
    busy: tuple[int, ...]  # scheduled devices held by another run
    unscheduled: tuple[int, ...]  # devices without an auto-updating job (PEM, inactive, ...)


def _unclaimed(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(_jobs.c.claimed_until.is_(None), _jobs.c.claimed_until <= now)


def due_jobs(
    engine: Engine, *, now: datetime, limit: int, after: DueJob | None = None
) -> list[DueJob]:
    """The first ``limit`` jobs due at ``now`` and not held by a run, oldest due first.

    One query driven by the ``due_at`` index of ``update_jobs`` (never a scan of devices);
    each row's device is checked to be active by primary key. ``after`` continues a listing
    from a previous page (keyset pagination on ``(due_at, device_id)``).
    """
    if limit <= 0:
        return []
    query = (
        sa.select(_jobs.c.due_at, _jobs.c.device_id)
        .select_from(_jobs.join(_devices, _devices.c.id == _jobs.c.device_id))
        .where(_jobs.c.due_at <= now, _unclaimed(now), _devices.c.active == sa.true())
        .order_by(_jobs.c.due_at, _jobs.c.device_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            sa.or_(
                _jobs.c.due_at > after.due_at,
                sa.and_(_jobs.c.due_at == after.due_at, _jobs.c.device_id > after.device_id),
            )
        )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [DueJob(due_at=row.due_at, device_id=row.device_id) for row in rows]


def due_device_ids(
    engine: Engine, *, now: datetime, limit: int, after: DueJob | None = None
) -> list[int]:
    """Like :func:`due_jobs`, the device IDs only."""
    return [job.device_id for job in due_jobs(engine, now=now, limit=limit, after=after)]


def next_due_at(engine: Engine, *, now: datetime) -> datetime | None:
    """When the next job not held by a run is due (possibly already), or None without any."""
    query = (
        sa.select(_jobs.c.due_at)
        .select_from(_jobs.join(_devices, _devices.c.id == _jobs.c.device_id))
        .where(_unclaimed(now), _devices.c.active == sa.true())
        .order_by(_jobs.c.due_at, _jobs.c.device_id)
        .limit(1)
    )
    with engine.connect() as connection:
        value: datetime | None = connection.execute(query).scalar()
    return value


def _check_claimant(claimed_by: str) -> None:
    if not claimed_by or len(claimed_by) > CLAIMANT_MAX:
        raise ValueError(f"a claimant is 1 to {CLAIMANT_MAX} characters: {claimed_by!r}")


def _claim_statement(
    device_ids: Collection[int],
    *,
    claimed_by: str,
    now: datetime,
    lease: timedelta,
    due_by: datetime | None,
) -> sa.Update:
    """Take the jobs among ``device_ids`` that nobody else holds (a lease of our own renews)."""
    statement = (
        sa.update(_jobs)
        .where(
            _jobs.c.device_id.in_(sorted(device_ids)),
            sa.or_(_unclaimed(now), _jobs.c.claimed_by == claimed_by),
        )
        .values(claimed_by=claimed_by, claimed_until=now + lease)
    )
    if due_by is not None:
        statement = statement.where(_jobs.c.due_at <= due_by)
    return statement


def claim(
    engine: Engine,
    device_ids: Iterable[int],
    *,
    claimed_by: str,
    now: datetime,
    lease: timedelta = CLAIM_LEASE,
    due_by: datetime | None = None,
) -> list[int]:
    """Atomically hold the jobs of ``device_ids`` for ``lease``; the IDs actually claimed.

    A job is claimed when nobody holds it, its holder's lease has expired, or ``claimed_by``
    already holds it (the lease is renewed). With ``due_by``, only jobs due by then are taken
    (a job moved forward meanwhile, e.g. by a forced update, is left alone). Devices without
    a job are never claimed.
    """
    _check_claimant(claimed_by)
    ids = set(device_ids)
    if not ids:
        return []
    statement = _claim_statement(
        ids, claimed_by=claimed_by, now=now, lease=lease, due_by=due_by
    ).returning(_jobs.c.device_id)
    with transaction(engine) as session:
        claimed = session.execute(statement).scalars().all()
    return sorted(claimed)


def claim_for_run(
    engine: Engine,
    device_ids: Iterable[int],
    *,
    claimed_by: str,
    now: datetime,
    lease: timedelta = CLAIM_LEASE,
) -> RunClaim:
    """Claim what can be claimed and tell apart the devices held elsewhere and those
    without a job, in one transaction."""
    _check_claimant(claimed_by)
    ids = set(device_ids)
    if not ids:
        return RunClaim((), (), ())
    with transaction(engine) as session:
        session.execute(
            _claim_statement(ids, claimed_by=claimed_by, now=now, lease=lease, due_by=None)
        )
        rows = session.execute(
            sa.select(_jobs.c.device_id, _jobs.c.claimed_by).where(
                _jobs.c.device_id.in_(sorted(ids))
            )
        ).all()
    holders: dict[int, str | None] = {row.device_id: row.claimed_by for row in rows}
    return RunClaim(
        claimed=tuple(sorted(i for i, by in holders.items() if by == claimed_by)),
        busy=tuple(sorted(i for i, by in holders.items() if by != claimed_by)),
        unscheduled=tuple(sorted(ids - holders.keys())),
    )


def release(
    engine: Engine,
    device_ids: Iterable[int],
    claimed_by: str,
    *,
    defer_until: datetime | None = None,
) -> list[int]:
    """Give back the jobs of ``device_ids`` still held by ``claimed_by``; the IDs released.

    Jobs that were rescheduled meanwhile (``reschedule`` clears the claim) are not touched.
    With ``defer_until``, released jobs are also not due before then.
    """
    ids = set(device_ids)
    if not ids:
        return []
    values: dict[str, object] = {"claimed_by": None, "claimed_until": None}
    if defer_until is not None:
        later = sa.literal(defer_until, type_=_jobs.c.due_at.type)
        values["due_at"] = sa.case((_jobs.c.due_at < later, later), else_=_jobs.c.due_at)
    statement = (
        sa.update(_jobs)
        .where(_jobs.c.device_id.in_(sorted(ids)), _jobs.c.claimed_by == claimed_by)
        .values(values)
        .returning(_jobs.c.device_id)
    )
    with transaction(engine) as session:
        released = session.execute(statement).scalars().all()
    return sorted(released)


def claim_due_batches(
    engine: Engine,
    *,
    now: datetime,
    batch_size: int,
    max_batches: int,
    claimant_prefix: str,
    lease: timedelta = CLAIM_LEASE,
) -> list[Batch]:
    """Claim up to ``max_batches`` batches of due devices, oldest due first.

    Each batch is claimed under its own claimant (``claimant_prefix`` + a digest of the batch),
    which the refresh run for it uses to renew and, at the end, release its claim.
    """
    batches: list[Batch] = []
    attempts = 0
    while len(batches) < max_batches and attempts < max_batches * 2:
        attempts += 1
        jobs = due_jobs(engine, now=now, limit=batch_size)
        if not jobs:
            break
        claimant = batch_claimant(claimant_prefix, [job.device_id for job in jobs])
        claimed = set(
            claim(
                engine,
                [job.device_id for job in jobs],
                claimed_by=claimant,
                now=now,
                lease=lease,
                due_by=now,
            )
        )
        mine = [job for job in jobs if job.device_id in claimed]
        if mine:  # none: another claimant was faster; look again
            batches.append(
                Batch(
                    claimed_by=claimant,
                    device_ids=tuple(job.device_id for job in mine),
                    first_due_at=mine[0].due_at,
                    last_due_at=mine[-1].due_at,
                )
            )
    return batches


def batch_claimant(prefix: str, device_ids: Iterable[int]) -> str:
    """A claimant name unique to a batch: ``prefix`` and a digest of its devices."""
    digest = hashlib.sha256(",".join(map(str, sorted(device_ids))).encode()).hexdigest()
    room = CLAIMANT_MAX - len(prefix) - 1
    if room < 12:
        raise ValueError(f"claimant prefix too long: {prefix!r}")
    return f"{prefix}-{digest[: min(room, 16)]}"


def scheduling_enabled(engine: Engine) -> bool:
    """Whether Domain & SSL Tracking is on (off: there are no auto-updating jobs at all)."""
    with reader(engine) as session:
        return tracking_enabled(session)
