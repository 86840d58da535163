"""The update schedule (pure): how soon a device's audit is refreshed.

The reference's rule: the closer the expiry, the more often. More than 90 days to go: every
30 days; more than 30: every 7 days; more than 7: every 48 hours; 7 or fewer, and expired:
every 24 hours. A failed update, or a domain whose registration was read but whose DNS look-up
failed, is retried one hour later instead, for that one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

RETRY_INTERVAL = timedelta(hours=1)
UNKNOWN_EXPIRY_INTERVAL = timedelta(days=30)

# (more than this much time left, refresh interval), checked in order.
_TIERS: tuple[tuple[timedelta, timedelta], ...] = (
    (timedelta(days=90), timedelta(days=30)),
    (timedelta(days=30), timedelta(days=7)),
    (timedelta(days=7), timedelta(hours=48)),
)
_LAST_TIER = timedelta(hours=24)


class Outcome(StrEnum):
    OK = "OK"
    DNS_FAILED = "DNS_FAILED"  # registration read, DNS records not
    FAILED = "FAILED"


@dataclass(frozen=True)
class NextUpdate:
    due_at: datetime
    interval: timedelta
    reason: str

    @property
    def iso_interval(self) -> str:
        return iso_duration(self.interval)


def next_update(*, expires_at: datetime | None, now: datetime, outcome: Outcome) -> NextUpdate:
    if outcome is Outcome.FAILED:
        return NextUpdate(now + RETRY_INTERVAL, RETRY_INTERVAL, "the last update failed; retrying")
    if outcome is Outcome.DNS_FAILED:
        return NextUpdate(
            now + RETRY_INTERVAL,
            RETRY_INTERVAL,
            "the registry answered but the DNS look-up failed; retrying",
        )
    interval, reason = interval_for_expiry(expires_at, now)
    return NextUpdate(now + interval, interval, reason)


def interval_for_expiry(expires_at: datetime | None, now: datetime) -> tuple[timedelta, str]:
    if expires_at is None:
        return UNKNOWN_EXPIRY_INTERVAL, "the expiry date is unknown"
    left = expires_at - now
    if left < timedelta(0):
        return _LAST_TIER, f"expired {_days(-left)} ago"
    for more_than, interval in _TIERS:
        if left > more_than:
            return interval, f"expires in {_days(left)} (more than {more_than.days} days)"
    return _LAST_TIER, f"expires in {_days(left)} (7 days or fewer)"


def _days(delta: timedelta) -> str:
    if delta >= timedelta(days=2):
        return f"{delta.days} days"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} hour" if hours == 1 else f"{hours} hours"


def iso_duration(delta: timedelta) -> str:
    """P30D, P7D, PT48H, PT24H, PT1H: whole days above 48 hours, hours up to it."""
    seconds = int(delta.total_seconds())
    if seconds > 48 * 3600 and seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    if seconds % 3600 == 0:
        return f"PT{seconds // 3600}H"
    return f"PT{seconds}S"


def job_wanted(
    *,
    category: str,
    active: bool,
    ssl_source_kind: str | None,
    domain: str | None,
    tracking_enabled: bool,
) -> bool:
    """Auto-updating jobs exist only for active, host-sourced SSL certificates and domains,
    while Domain & SSL Tracking is enabled. Never for PEM certificates; never for wildcard
    domains, whose details are never retrieved."""
    if not (active and tracking_enabled):
        return False
    if category == "SSL_CERTIFICATE":
        return ssl_source_kind == "HOST"
    if category == "DOMAIN":
        return bool(domain) and not (domain or "").startswith("*.")
    return False
