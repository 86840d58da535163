"""Alerts and notifications: channels, policies, alerts and their deliveries (the outbox)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import JSONList, UTCDateTime

GLOBAL_SCOPE = "global"


class NotificationChannel(SQLModel, table=True):
    """Where alerts go: e-mail recipients, a webhook URL or an Apprise URL.

    ``organization_id`` None: a global channel (administrators only). ``target`` holds the
    recipients or the URL as given (secrets included: they are needed to send); people see
    it masked. A deleted channel is kept (``deleted_at``) so past deliveries still name it.
    """

    __tablename__ = "notification_channels"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)  # EMAIL, WEBHOOK, APPRISE
    organization_id: int | None = Field(default=None, foreign_key="organizations.id", index=True)
    enabled: bool = True
    target: str = Field(sa_type=sa.Text)
    secret: str | None = Field(default=None, sa_type=sa.Text)  # WEBHOOK signing secret
    created_at: datetime = Field(sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AlertPolicy(SQLModel, table=True):
    """The global default (``scope`` "global") or an organization's own (``scope``
    "organization:<id>"): one row per scope, which a unique column makes sure of."""

    __tablename__ = "alert_policies"

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=40, unique=True)
    organization_id: int | None = Field(default=None, foreign_key="organizations.id")
    expiry_thresholds_days: list[int] = Field(default_factory=list, sa_type=JSONList)
    notify_on_change: bool = True
    failures_before_alert: int = 3
    updated_at: datetime = Field(sa_type=UTCDateTime)


class AlertPolicyChannel(SQLModel, table=True):
    """The channels a policy sends to."""

    __tablename__ = "alert_policy_channels"

    policy_id: int = Field(foreign_key="alert_policies.id", primary_key=True)
    channel_id: int = Field(foreign_key="notification_channels.id", primary_key=True, index=True)


class Alert(SQLModel, table=True):
    """Something people are told about.

    Expiry alerts carry the expiry instant they are about and their threshold in days (0 for
    EXPIRED); the unique constraint on ``(device_id, expiry_at, threshold_days)`` makes "each
    (device, expiry instant, threshold) alerts once, ever" the database's rule. Other kinds
    leave both empty (NULLs never collide).
    """

    __tablename__ = "alerts"
    __table_args__ = (
        sa.UniqueConstraint("device_id", "expiry_at", "threshold_days", name="uq_alerts_expiry"),
        sa.Index("ix_alerts_device_id_id", "device_id", "id"),
        sa.Index("ix_alerts_state_kind", "state", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="devices.id")
    kind: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    state: str = Field(max_length=16)  # OPEN, ACKNOWLEDGED, RESOLVED
    message: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expiry_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    threshold_days: int | None = None
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AlertDelivery(SQLModel, table=True):
    """One alert to one channel: a row of the transactional outbox.

    Written with the alert, in the transaction that raised it; a delivery worker claims due
    rows for a lease (``claimed_by``/``claimed_until``), sends, and marks them SENT, or
    schedules the next attempt (``next_attempt_at``), or gives up (FAILED). ``idempotency_key``
    is what a receiver sees (the webhook's ``webhook-id``), the same on every attempt.
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (sa.Index("ix_alert_deliveries_due", "state", "next_attempt_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alerts.id", index=True)
    channel_id: int = Field(foreign_key="notification_channels.id", index=True)
    state: str = Field(max_length=16)  # PENDING, SENT, FAILED
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    idempotency_key: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
