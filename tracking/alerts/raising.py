"""Raising alerts: the alert rows and their deliveries (the outbox), in the caller's
transaction, and resolving alerts."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from tracking.alerts.book import Book
from tracking.alerts.tables import ALERTS, DELIVERIES
from tracking.core.alert_rules import AlertKind, AlertState, DeliveryState, severity


@dataclass(frozen=True)
class NewAlert:
    device_id: int
    organization_id: int
    kind: AlertKind
    message: str
    threshold_days: int | None = None  # expiry alerts: the level (0 for EXPIRED)
    expiry_at: datetime | None = None  # expiry alerts: the expiry instant they are about


def idempotency_key() -> str:
    """A delivery's stable id, what a receiver sees as ``webhook-id``."""
    return "msg_" + secrets.token_urlsafe(18)


def raise_alerts(
    session: Session, alerts: Sequence[NewAlert], book: Book, *, now: datetime
) -> list[int]:
    """Insert the alerts (OPEN) and a PENDING delivery per recipient channel: two statements."""
    if not alerts:
        return []
    rows = [
        {
            "device_id": a.device_id,
            "kind": a.kind.value,
            "severity": severity(a.kind, a.threshold_days).value,
            "state": AlertState.OPEN.value,
            "message": a.message,
            "created_at": now,
            "expiry_at": a.expiry_at,
            "threshold_days": a.threshold_days,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "resolved_at": None,
        }
        for a in alerts
    ]
    statement = sa.insert(ALERTS).returning(ALERTS.c.id, sort_by_parameter_order=True)
    ids = list(session.execute(statement, rows).scalars().all())
    deliveries = [
        {
            "alert_id": alert_id,
            "channel_id": channel_id,
            "state": DeliveryState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": None,
            "delivered_at": None,
            "idempotency_key": idempotency_key(),
            "created_at": now,
            "claimed_by": None,
            "claimed_until": None,
        }
        for alert, alert_id in zip(alerts, ids, strict=True)
        for channel_id in book.recipients(alert.organization_id)
    ]
    if deliveries:
        session.execute(sa.insert(DELIVERIES), deliveries)
    return ids


def resolve(session: Session, alert_ids: Collection[int], *, now: datetime) -> int:
    """Resolve the alerts that are not yet; how many were."""
    if not alert_ids:
        return 0
    result = session.execute(
        sa.update(ALERTS)
        .where(ALERTS.c.id.in_(sorted(alert_ids)), ALERTS.c.state != AlertState.RESOLVED.value)
        .values(state=AlertState.RESOLVED.value, resolved_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def resolve_kinds(
    session: Session, device_ids: Collection[int], kinds: Collection[AlertKind], *, now: datetime
) -> int:
    """Resolve the unresolved alerts of these kinds of these devices."""
    if not device_ids:
        return 0
    result = session.execute(
        sa.update(ALERTS)
        .where(
            ALERTS.c.device_id.in_(sorted(set(device_ids))),
            ALERTS.c.kind.in_([k.value for k in kinds]),
            ALERTS.c.state != AlertState.RESOLVED.value,
        )
        .values(state=AlertState.RESOLVED.value, resolved_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
