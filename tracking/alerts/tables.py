"""The Core tables alerts read and write (plain rows, a few statements per batch)."""

from __future__ import annotations

import sqlalchemy as sa

from models import (
    Alert,
    AlertDelivery,
    AlertPolicy,
    AlertPolicyChannel,
    Device,
    NotificationChannel,
    Organization,
)

ALERTS: sa.Table = Alert.__table__  # type: ignore[attr-defined]
DELIVERIES: sa.Table = AlertDelivery.__table__  # type: ignore[attr-defined]
POLICIES: sa.Table = AlertPolicy.__table__  # type: ignore[attr-defined]
POLICY_CHANNELS: sa.Table = AlertPolicyChannel.__table__  # type: ignore[attr-defined]
CHANNELS: sa.Table = NotificationChannel.__table__  # type: ignore[attr-defined]
DEVICES: sa.Table = Device.__table__  # type: ignore[attr-defined]
ORGANIZATIONS: sa.Table = Organization.__table__  # type: ignore[attr-defined]
