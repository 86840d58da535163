"""The outbox's bookkeeping: claiming a due delivery for a lease, reading what to send, and
recording how the attempt ended (SENT, a retry later, or FAILED after 24 hours)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from models.db import transaction
from tracking.alerts.tables import ALERTS, CHANNELS, DELIVERIES, DEVICES, ORGANIZATIONS
from tracking.core.alert_rules import DeliveryState, next_attempt
from tracking.core.notices import Notice, NoticeDevice
from tracking.probes.notify import ChannelTarget
from tracking.refresh.records import add_note

NOTE_AUTHOR = "dstrack alerts"
PENDING = DeliveryState.PENDING.value


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds: where it goes and what it says."""

    id: int
    key: str
    attempts: int
    created_at: datetime
    channel_id: int
    channel: ChannelTarget
    channel_usable: str | None  # why the channel cannot be used (deleted, disabled), else None
    notice: Notice


def _claimable(now: datetime) -> Any:
    return sa.and_(
        DELIVERIES.c.state == PENDING,
        DELIVERIES.c.next_attempt_at <= now,
        sa.or_(DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until <= now),
    )


def pending_count(engine: Engine, *, now: datetime) -> int:
    """Deliveries due now and not held by a worker."""
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(DELIVERIES).where(_claimable(now))
        return int(connection.execute(query).scalar_one())


def pending_key(engine: Engine, *, now: datetime) -> tuple[int, str]:
    """How many deliveries are due now and not held, and a key of that state: the same while
    nothing was attempted (a sensor's run key), a new one after any attempt or new alert."""
    query = sa.select(
        sa.func.count(), sa.func.max(DELIVERIES.c.id), sa.func.sum(DELIVERIES.c.attempts)
    ).where(_claimable(now))
    with engine.connect() as connection:
        count, newest, attempts = connection.execute(query).one()
    return int(count), f"{newest or 0}-{count}-{attempts or 0}"


def next_due(engine: Engine) -> datetime | None:
    """When the next pending delivery is due (possibly already)."""
    with engine.connect() as connection:
        value: datetime | None = connection.execute(
            sa.select(sa.func.min(DELIVERIES.c.next_attempt_at)).where(
                DELIVERIES.c.state == PENDING
            )
        ).scalar()
    return value


def claim_one(
    engine: Engine,
    *,
    worker: str,
    now: datetime,
    lease: timedelta,
    skip_channels: Collection[int] = (),
) -> int | None:
    """Hold the first due delivery (not of ``skip_channels``) until ``now + lease``; its id.

    The conditional UPDATE is the claim: of two workers that picked the same row, the one whose
    UPDATE comes second finds it claimed and matches nothing.
    """
    query = (
        sa.select(DELIVERIES.c.id)
        .where(_claimable(now))
        .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
        .limit(8)
    )
    if skip_channels:
        query = query.where(DELIVERIES.c.channel_id.not_in(sorted(skip_channels)))
    with transaction(engine) as session:
        for delivery_id in session.execute(query).scalars().all():
            claimed = session.execute(
                sa.update(DELIVERIES)
                .where(DELIVERIES.c.id == delivery_id, _claimable(now))
                .values(claimed_by=worker, claimed_until=now + lease)
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                return int(delivery_id)
    return None


# What a delivery needs of its alert, device, organization and channel: one row.
_CLAIMED_COLUMNS = (
    DELIVERIES.c.id,
    DELIVERIES.c.idempotency_key,
    DELIVERIES.c.attempts,
    DELIVERIES.c.created_at,
    DELIVERIES.c.channel_id,
    ALERTS.c.id.label("alert_id"),
    ALERTS.c.kind,
    ALERTS.c.severity,
    ALERTS.c.message,
    ALERTS.c.threshold_days,
    ALERTS.c.created_at.label("alert_created_at"),
    DEVICES.c.id.label("device_id"),
    DEVICES.c.name.label("device_name"),
    DEVICES.c.category,
    DEVICES.c.organization_id,
    DEVICES.c.ssl_host,
    DEVICES.c.ssl_port,
    DEVICES.c.domain,
    DEVICES.c.expires_at,
    ORGANIZATIONS.c.name.label("organization_name"),
    CHANNELS.c.kind.label("channel_kind"),
    CHANNELS.c.name.label("channel_name"),
    CHANNELS.c.target,
    CHANNELS.c.secret,
    CHANNELS.c.enabled,
    CHANNELS.c.deleted_at,
)


def load_claimed(engine: Engine, delivery_id: int) -> Claimed | None:
    query = (
        sa.select(*_CLAIMED_COLUMNS)
        .join(ALERTS, ALERTS.c.id == DELIVERIES.c.alert_id)
        .join(DEVICES, DEVICES.c.id == ALERTS.c.device_id)
        .join(ORGANIZATIONS, ORGANIZATIONS.c.id == DEVICES.c.organization_id)
        .join(CHANNELS, CHANNELS.c.id == DELIVERIES.c.channel_id)
        .where(DELIVERIES.c.id == delivery_id)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else _claimed(row)


def _claimed(row: Any) -> Claimed:
    unusable = (
        "the channel was deleted"
        if row.deleted_at is not None
        else (None if row.enabled else "the channel is disabled")
    )
    threshold = row.threshold_days if row.kind == "EXPIRING" else None
    device = NoticeDevice(
        id=row.device_id,
        name=row.device_name,
        category=row.category,
        organization_id=row.organization_id,
        organization_name=row.organization_name,
        host=row.ssl_host,
        port=row.ssl_port,
        domain=row.domain,
        expires_at=row.expires_at,
    )
    notice = Notice(
        row.alert_id,
        row.kind,
        row.severity,
        row.message,
        threshold,
        row.alert_created_at,
        device,
    )
    channel = ChannelTarget(row.channel_kind, row.channel_name, row.target, row.secret)
    return Claimed(
        row.id,
        row.idempotency_key,
        row.attempts,
        row.created_at,
        row.channel_id,
        channel,
        unusable,
        notice,
    )


def _held(claimed: Claimed, worker: str) -> Any:
    return sa.and_(
        DELIVERIES.c.id == claimed.id,
        DELIVERIES.c.claimed_by == worker,
        DELIVERIES.c.state == PENDING,
    )


def record_sent(engine: Engine, claimed: Claimed, *, worker: str, now: datetime) -> bool:
    """SENT, with its Activity note; False when the claim was lost meanwhile."""
    with transaction(engine) as session:
        done = session.execute(
            sa.update(DELIVERIES)
            .where(_held(claimed, worker))
            .values(
                state=DeliveryState.SENT.value,
                attempts=DELIVERIES.c.attempts + 1,
                delivered_at=now,
                last_error=None,
                claimed_by=None,
                claimed_until=None,
            )
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return False
        text = f"Alert sent to {claimed.channel.name}: {claimed.notice.message}"
        add_note(session, claimed.notice.device.id, text, author=NOTE_AUTHOR, now=now)
    return True


def record_failure(
    engine: Engine, claimed: Claimed, error: str, *, worker: str, now: datetime, final: bool = False
) -> DeliveryState | None:
    """A failed attempt: retried later (PENDING), or FAILED after 24 hours of retries (or when
    ``final``), with an Activity note. None when the claim was lost meanwhile."""
    attempts = claimed.attempts + 1
    due = None if final else next_attempt(claimed.created_at, attempts, now)
    state = DeliveryState.PENDING if due is not None else DeliveryState.FAILED
    with transaction(engine) as session:
        done = session.execute(
            sa.update(DELIVERIES)
            .where(_held(claimed, worker))
            .values(
                state=state.value,
                attempts=attempts,
                last_error=error,
                next_attempt_at=due or now,
                claimed_by=None,
                claimed_until=None,
            )
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return None
        if state is DeliveryState.FAILED:
            text = (
                f"Alert could not be sent to {claimed.channel.name} after {attempts} "
                f"attempt(s): {error} ({claimed.notice.message})"
            )
            add_note(session, claimed.notice.device.id, text, author=NOTE_AUTHOR, now=now)
    return state
