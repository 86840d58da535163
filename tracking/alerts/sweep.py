"""The expiry sweep: expiry alerts by the calendar, not by the refresh.

Each device keeps ``expiry_alert_due_at``: when its expiry next crosses a threshold of its
organization's policy (or the expiry itself). The sweep walks the active, unmuted devices whose
moment has come - in batches, keyset-paginated along the index ``(alerts_muted, active,
expiry_alert_due_at, id)``, so a batch costs the same with 10k or 1M devices - and for each:

- raises one alert for the smallest threshold crossed (EXPIRED once the expiry has passed),
  unless this (device, expiry instant, threshold) or a smaller one already alerted: the
  alerts' unique key makes "once, ever" the database's rule;
- resolves open EXPIRING/EXPIRED alerts about an earlier expiry (a renewal) and open EXPIRING
  alerts a smaller threshold supersedes;
- moves ``expiry_alert_due_at`` to the next crossing (None: nothing more to raise).

Inactive and muted devices are not in the index range the sweep reads: they raise nothing, and
keep their due time, so they are looked at as soon as they are active and unmuted again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import reader, transaction
from tracking.alerts.book import Book, load_book
from tracking.alerts.raising import NewAlert, raise_alerts, resolve
from tracking.alerts.tables import ALERTS, DEVICES
from tracking.core import clock
from tracking.core.alert_rules import (
    EXPIRY_KINDS,
    AlertKind,
    AlertState,
    expiry_kind,
    expiry_level,
    expiry_message,
    next_expiry_check,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 500
_EXPIRY_KINDS = [k.value for k in EXPIRY_KINDS]


@dataclass
class SweepReport:
    looked_at: int = 0
    raised: int = 0
    resolved: int = 0
    batches: int = 0
    alert_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Key:
    due_at: datetime
    device_id: int


def due_devices(
    session: Session, *, now: datetime, limit: int, after: _Key | None = None
) -> Sequence[sa.Row[Any]]:
    """Active, unmuted devices whose expiry check is due, in index order."""
    query = (
        sa.select(
            DEVICES.c.id,
            DEVICES.c.name,
            DEVICES.c.category,
            DEVICES.c.organization_id,
            DEVICES.c.expires_at,
            DEVICES.c.expiry_alert_due_at,
        )
        .where(
            DEVICES.c.active == sa.true(),
            DEVICES.c.alerts_muted == sa.false(),
            DEVICES.c.expiry_alert_due_at <= now,
        )
        .order_by(DEVICES.c.expiry_alert_due_at, DEVICES.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            sa.or_(
                DEVICES.c.expiry_alert_due_at > after.due_at,
                sa.and_(
                    DEVICES.c.expiry_alert_due_at == after.due_at, DEVICES.c.id > after.device_id
                ),
            )
        )
    return session.execute(query).all()


def _expiry_alerts(session: Session, devices: Sequence[sa.Row[Any]]) -> dict[int, list[Any]]:
    """Unresolved expiry alerts of the devices, and every one about their current expiry."""
    current = sorted({d.expires_at for d in devices if d.expires_at is not None})
    rows = session.execute(
        sa.select(
            ALERTS.c.id,
            ALERTS.c.device_id,
            ALERTS.c.expiry_at,
            ALERTS.c.threshold_days,
            ALERTS.c.state,
            ALERTS.c.kind,
        ).where(
            ALERTS.c.device_id.in_([d.id for d in devices]),
            ALERTS.c.expiry_at.is_not(None),
            sa.or_(ALERTS.c.state != AlertState.RESOLVED.value, ALERTS.c.expiry_at.in_(current)),
        )
    ).all()
    by_device: dict[int, list[Any]] = {}
    for row in rows:
        by_device.setdefault(row.device_id, []).append(row)
    return by_device


@dataclass
class _Decisions:
    new: list[NewAlert] = field(default_factory=list)
    resolved: set[int] = field(default_factory=set)
    due: list[dict[str, object]] = field(default_factory=list)


def _decide(
    device: sa.Row[Any], known: list[Any], book: Book, now: datetime, out: _Decisions
) -> None:
    expires_at = device.expires_at
    thresholds = book.rules_for(device.organization_id).thresholds_days
    out.due.append({"k_id": device.id, "v_due": next_expiry_check(expires_at, now, thresholds)})
    if expires_at is None:
        return
    open_ = [a for a in known if a.state != AlertState.RESOLVED.value]
    out.resolved.update(a.id for a in open_ if a.expiry_at < expires_at)  # renewed since
    level = expiry_level(expires_at, now, thresholds)
    if level is None:
        return
    same_expiry = [a for a in known if a.expiry_at == expires_at]
    if any(a.threshold_days <= level for a in same_expiry):
        return  # this threshold, or a smaller one, alerted already
    out.new.append(
        NewAlert(
            device_id=device.id,
            organization_id=device.organization_id,
            kind=expiry_kind(level),
            message=expiry_message(device.category, device.name, expires_at, now),
            threshold_days=level,
            expiry_at=expires_at,
        )
    )
    out.resolved.update(
        a.id for a in open_ if a.expiry_at == expires_at and a.kind == AlertKind.EXPIRING
    )


_SET_DUE = (
    sa.update(DEVICES)
    .where(DEVICES.c.id == sa.bindparam("k_id"))
    .values(expiry_alert_due_at=sa.bindparam("v_due"))
)


def sweep_batch(
    engine: Engine, book: Book, *, now: datetime, limit: int, after: _Key | None = None
) -> tuple[SweepReport, _Key | None]:
    """One batch in one transaction; the report and where the next batch starts (None: done)."""
    with transaction(engine) as session:
        devices = due_devices(session, now=now, limit=limit, after=after)
        if not devices:
            return SweepReport(), None
        known = _expiry_alerts(session, devices)
        decisions = _Decisions()
        for device in devices:
            _decide(device, known.get(device.id, []), book, now, decisions)
        ids = raise_alerts(session, decisions.new, book, now=now)
        resolved = resolve(session, decisions.resolved, now=now)
        session.execute(_SET_DUE, decisions.due)
    last = devices[-1]
    report = SweepReport(len(devices), len(ids), resolved, 1, ids)
    following = _Key(last.expiry_alert_due_at, last.id) if len(devices) == limit else None
    return report, following


def sweep(
    engine: Engine, *, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> SweepReport:
    """Every due device, batch after batch. A batch that collides with a concurrent sweep
    (the unique key refuses a second copy of an alert) is done again, once."""
    now = now or clock.now()
    with reader(engine) as session:
        book = load_book(session)
    total = SweepReport()
    after: _Key | None = None
    while True:
        try:
            report, following = sweep_batch(engine, book, now=now, limit=batch_size, after=after)
        except sa.exc.IntegrityError:
            log.info("an expiry sweep batch met a concurrent sweep; doing it again")
            report, following = sweep_batch(engine, book, now=now, limit=batch_size, after=after)
        total.looked_at += report.looked_at
        total.raised += report.raised
        total.resolved += report.resolved
        total.batches += report.batches
        total.alert_ids += report.alert_ids
        if following is None:
            return total
        after = following
