"""Change alerts, raised by the update that saw the change, inside its transaction.

A subscriber of the update pipeline (``tracking.refresh.events``). A batch in which nothing
alert-worthy happened - most scheduled refreshes - costs no statement at all; otherwise a few
for the whole batch:

- an expiry that moved re-arms the expiry sweep for the device (it looks again at once), and a
  later expiry (a renewal) resolves the open EXPIRING/EXPIRED alerts;
- a new certificate, a trust or host-name verdict turned bad, a changed registrar, statuses or
  name servers, a domain no longer registered raise their kind (unless the policy's
  ``notifyOnChange`` is off); nothing on a device's first retrieval;
- ``failuresBeforeAlert`` failed updates in a row raise UPDATE_FAILING once per failing streak;
  the next successful update resolves it.

Inactive and muted devices raise nothing. Alerts and their deliveries are rows of this
transaction: they exist exactly when the update does (a transactional outbox).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from tracking.alerts.alerting import Alerting
from tracking.alerts.book import load_book
from tracking.alerts.raising import NewAlert, raise_alerts, resolve_kinds
from tracking.alerts.tables import ALERTS, DEVICES
from tracking.core.alert_rules import (
    CHANGE_KINDS,
    EXPIRY_KINDS,
    AlertKind,
    AlertState,
    change_alerts,
    failing_message,
)
from tracking.refresh.events import UpdateBatch, UpdateEvent

WATCHED_FIELDS = frozenset(
    {
        "fingerprint_sha256",
        "trusted",
        "hostname_matches",
        "revocation_status",
        "registrar",
        "statuses",
        "name_servers",
        "registered",
    }
)

_REARM = (
    sa.update(DEVICES)
    .where(DEVICES.c.id == sa.bindparam("k_id"))
    .values(expiry_alert_due_at=sa.bindparam("v_due"))
)
_RESOLVE_RENEWED = (
    sa.update(ALERTS)
    .where(
        ALERTS.c.device_id == sa.bindparam("k_device"),
        ALERTS.c.kind.in_([k.value for k in EXPIRY_KINDS]),
        ALERTS.c.state != AlertState.RESOLVED.value,
        ALERTS.c.expiry_at < sa.bindparam("k_expiry", type_=ALERTS.c.expiry_at.type),
    )
    .values(state=AlertState.RESOLVED.value, resolved_at=sa.bindparam("v_now"))
)


def _interesting(event: UpdateEvent) -> bool:
    if event.failed:
        return event.consecutive_failures >= 1
    if event.consecutive_failures == 0 and event.previous_consecutive_failures > 0:
        return True  # recovered: its UPDATE_FAILING alert is resolved
    return not event.first and any(c.field in WATCHED_FIELDS for c in event.changes)


class ChangeAlerts:
    """The pipeline subscriber that raises change and failure alerts. It carries the
    ``tracking.alerts.Alerting`` the services were built with, for who sends (or None)."""

    def __init__(self, alerting: Alerting | None = None) -> None:
        self.alerting = alerting

    def on_updates(self, batch: UpdateBatch) -> None:
        moved = [e for e in batch.events if e.expires_at != e.previous_expires_at]
        if moved:
            _rearm(batch.session, moved, batch.now)
        candidates = [e for e in batch.events if _interesting(e)]
        if candidates:
            _raise(batch.session, candidates, batch.now)


def _rearm(session: Session, events: Sequence[UpdateEvent], now: Any) -> None:
    session.execute(
        _REARM,
        [{"k_id": e.device_id, "v_due": now if e.expires_at else None} for e in events],
    )
    renewed = [
        {"k_device": e.device_id, "k_expiry": e.expires_at, "v_now": now}
        for e in events
        if e.expires_at is not None
        and e.previous_expires_at is not None
        and e.expires_at > e.previous_expires_at
    ]
    if renewed:
        session.execute(_RESOLVE_RENEWED, renewed)


def _raise(session: Session, events: Sequence[UpdateEvent], now: Any) -> None:
    ids = sorted({e.device_id for e in events})
    devices = {
        row.id: row
        for row in session.execute(
            sa.select(
                DEVICES.c.id,
                DEVICES.c.name,
                DEVICES.c.category,
                DEVICES.c.organization_id,
                DEVICES.c.active,
                DEVICES.c.alerts_muted,
            ).where(DEVICES.c.id.in_(ids))
        )
    }
    recovered = [
        e.device_id for e in events if not e.failed and e.previous_consecutive_failures > 0
    ]
    resolve_kinds(session, recovered, [AlertKind.UPDATE_FAILING], now=now)
    live = [
        e
        for e in events
        if (d := devices.get(e.device_id)) is not None and d.active and not d.alerts_muted
    ]
    if not live:
        return
    book = load_book(session, {devices[e.device_id].organization_id for e in live})
    failing = _already_failing(session, [e.device_id for e in live if e.failed])
    new: list[NewAlert] = []
    for event in live:
        device = devices[event.device_id]
        rules = book.rules_for(device.organization_id)
        if event.failed:
            if (
                event.consecutive_failures >= rules.failures_before_alert
                and event.device_id not in failing
            ):
                error = event.error.message if event.error else None
                message = failing_message(
                    device.category, device.name, event.consecutive_failures, error
                )
                new.append(
                    NewAlert(
                        event.device_id, device.organization_id, AlertKind.UPDATE_FAILING, message
                    )
                )
            continue
        if event.first or not rules.notify_on_change:
            continue
        for raised in change_alerts(device.name, event.changes):
            if raised.kind in CHANGE_KINDS:
                new.append(
                    NewAlert(event.device_id, device.organization_id, raised.kind, raised.message)
                )
    raise_alerts(session, new, book, now=now)


def _already_failing(session: Session, device_ids: Sequence[int]) -> set[int]:
    """Devices with an unresolved UPDATE_FAILING alert (one per failing streak)."""
    if not device_ids:
        return set()
    return set(
        session.execute(
            sa.select(ALERTS.c.device_id).where(
                ALERTS.c.device_id.in_(sorted(set(device_ids))),
                ALERTS.c.kind == AlertKind.UPDATE_FAILING.value,
                ALERTS.c.state != AlertState.RESOLVED.value,
            )
        ).scalars()
    )
