"""The Core tables alerts read and write (plain rows, a few statements per batch), by the short
names the alerts code uses."""

from __future__ import annotations

from models.tables import (
    ALERT_DELIVERIES as DELIVERIES,
)
from models.tables import (
    ALERT_POLICIES as POLICIES,
)
from models.tables import (
    ALERT_POLICY_CHANNELS as POLICY_CHANNELS,
)
from models.tables import (
    ALERTS,
    DEVICES,
    ORGANIZATIONS,
)
from models.tables import (
    NOTIFICATION_CHANNELS as CHANNELS,
)

__all__ = [
    "ALERTS",
    "CHANNELS",
    "DELIVERIES",
    "DEVICES",
    "ORGANIZATIONS",
    "POLICIES",
    "POLICY_CHANNELS",
]
