"""Alert rules, pure: kinds and severities, expiry thresholds, which change raises what, the
messages people read, and the delivery retry schedule."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from tracking.core.changes import Change
from tracking.core.errors import ErrorCode, ValidationError


class AlertKind(StrEnum):
    EXPIRING = "EXPIRING"
    EXPIRED = "EXPIRED"
    CERTIFICATE_CHANGED = "CERTIFICATE_CHANGED"
    CHAIN_UNTRUSTED = "CHAIN_UNTRUSTED"
    HOSTNAME_MISMATCH = "HOSTNAME_MISMATCH"
    REVOKED = "REVOKED"
    REGISTRATION_CHANGED = "REGISTRATION_CHANGED"
    NAME_SERVERS_CHANGED = "NAME_SERVERS_CHANGED"
    DOMAIN_NOT_REGISTERED = "DOMAIN_NOT_REGISTERED"
    UPDATE_FAILING = "UPDATE_FAILING"


class AlertSeverity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class AlertState(StrEnum):
    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


class DeliveryState(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class ChannelKind(StrEnum):
    EMAIL = "EMAIL"
    WEBHOOK = "WEBHOOK"
    APPRISE = "APPRISE"


EXPIRY_KINDS = (AlertKind.EXPIRING, AlertKind.EXPIRED)
# Kinds a policy's notifyOnChange silences (expiry and failures always alert).
CHANGE_KINDS = frozenset(
    {
        AlertKind.CERTIFICATE_CHANGED,
        AlertKind.CHAIN_UNTRUSTED,
        AlertKind.HOSTNAME_MISMATCH,
        AlertKind.REVOKED,
        AlertKind.REGISTRATION_CHANGED,
        AlertKind.NAME_SERVERS_CHANGED,
        AlertKind.DOMAIN_NOT_REGISTERED,
    }
)

# --- policies --------------------------------------------------------------------------------

DEFAULT_THRESHOLDS_DAYS: tuple[int, ...] = (30, 14, 7, 3, 1)
DEFAULT_FAILURES_BEFORE_ALERT = 3
MAX_THRESHOLDS = 10
MAX_THRESHOLD_DAYS = 365
MAX_FAILURES_BEFORE_ALERT = 1000
EXPIRED_LEVEL = 0  # the "threshold" of an EXPIRED alert in the alerts' unique key


@dataclass(frozen=True)
class PolicyRules:
    """What a policy decides (the effective one of an organization)."""

    thresholds_days: tuple[int, ...] = DEFAULT_THRESHOLDS_DAYS
    notify_on_change: bool = True
    failures_before_alert: int = DEFAULT_FAILURES_BEFORE_ALERT


def clean_thresholds(values: Sequence[int]) -> tuple[int, ...]:
    """Thresholds as stored: distinct, largest first; refuses what makes no sense."""
    field = "expiryThresholdsDays"
    if not values:
        raise ValidationError(
            ErrorCode.INVALID_INPUT, "At least one expiry threshold is needed.", field=field
        )
    if len(values) > MAX_THRESHOLDS:
        raise ValidationError(
            ErrorCode.INVALID_INPUT, f"At most {MAX_THRESHOLDS} expiry thresholds.", field=field
        )
    bad = [v for v in values if not 1 <= v <= MAX_THRESHOLD_DAYS]
    if bad:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            f"Expiry thresholds are days before the expiry, from 1 to {MAX_THRESHOLD_DAYS} "
            f"(got {', '.join(map(str, bad))}).",
            field=field,
        )
    return tuple(sorted(set(values), reverse=True))


def check_failures_before_alert(value: int) -> int:
    if not 1 <= value <= MAX_FAILURES_BEFORE_ALERT:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            f"failuresBeforeAlert must be between 1 and {MAX_FAILURES_BEFORE_ALERT}.",
            field="failuresBeforeAlert",
        )
    return value


# --- expiry ----------------------------------------------------------------------------------


def expiry_level(expires_at: datetime, now: datetime, thresholds: Iterable[int]) -> int | None:
    """The smallest threshold crossed (``EXPIRED_LEVEL`` once expired), None when none is."""
    if expires_at <= now:
        return EXPIRED_LEVEL
    left = expires_at - now
    crossed = [t for t in thresholds if left <= timedelta(days=t)]
    return min(crossed) if crossed else None


def next_expiry_check(
    expires_at: datetime | None, now: datetime, thresholds: Iterable[int]
) -> datetime | None:
    """When the level changes next (the next threshold crossed, or the expiry itself); None
    when there is nothing more to raise (no expiry, or expired)."""
    if expires_at is None or expires_at <= now:
        return None
    moments = [expires_at - timedelta(days=t) for t in thresholds]
    return min([m for m in moments if m > now] + [expires_at])


def days_left(expires_at: datetime, now: datetime) -> int:
    """Calendar days from today to the expiry date (UTC), as people count them."""
    return (expires_at.date() - now.date()).days


def expiry_kind(level: int) -> AlertKind:
    return AlertKind.EXPIRED if level == EXPIRED_LEVEL else AlertKind.EXPIRING


def _what(category: str) -> str:
    return "Domain" if category == "DOMAIN" else "Certificate"


def _date(moment: datetime | date) -> str:
    return moment.strftime("%Y-%m-%d")


def expiry_message(category: str, name: str, expires_at: datetime, now: datetime) -> str:
    """``Certificate <name> expires in <d> days (<date>)`` / ``… expired on <date>``."""
    if expires_at <= now:
        return f"{_what(category)} {name} expired on {_date(expires_at)}"
    return (
        f"{_what(category)} {name} expires in {days_left(expires_at, now)} days "
        f"({_date(expires_at)})"
    )


# --- severities ------------------------------------------------------------------------------

CRITICAL_EXPIRY_DAYS = 3

_SEVERITIES = {
    AlertKind.EXPIRED: AlertSeverity.CRITICAL,
    AlertKind.CERTIFICATE_CHANGED: AlertSeverity.INFO,
    AlertKind.CHAIN_UNTRUSTED: AlertSeverity.CRITICAL,
    AlertKind.HOSTNAME_MISMATCH: AlertSeverity.CRITICAL,
    AlertKind.REVOKED: AlertSeverity.CRITICAL,
    AlertKind.REGISTRATION_CHANGED: AlertSeverity.WARNING,
    AlertKind.NAME_SERVERS_CHANGED: AlertSeverity.WARNING,
    AlertKind.DOMAIN_NOT_REGISTERED: AlertSeverity.CRITICAL,
    AlertKind.UPDATE_FAILING: AlertSeverity.WARNING,
}


def severity(kind: AlertKind, threshold_days: int | None = None) -> AlertSeverity:
    """EXPIRING is a WARNING, CRITICAL in the last ``CRITICAL_EXPIRY_DAYS`` days; see README."""
    if kind is AlertKind.EXPIRING:
        if threshold_days is not None and threshold_days <= CRITICAL_EXPIRY_DAYS:
            return AlertSeverity.CRITICAL
        return AlertSeverity.WARNING
    return _SEVERITIES[kind]


# --- changes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaisedChange:
    """An alert an update's changes call for."""

    kind: AlertKind
    message: str


def _was(change: Change) -> str:
    return change.old or "(none)"


def _now(change: Change) -> str:
    return change.new or "(none)"


def change_alerts(name: str, changes: Sequence[Change]) -> list[RaisedChange]:
    """The alerts an update's changes raise, at most one per kind, in a stable order."""
    by_field = {c.field: c for c in changes}
    raised: list[RaisedChange] = []
    if (c := by_field.get("fingerprint_sha256")) and c.old:
        raised.append(
            RaisedChange(
                AlertKind.CERTIFICATE_CHANGED,
                f"Certificate {name} was replaced: SHA-256 fingerprint {_was(c)} → {_now(c)}.",
            )
        )
    if (c := by_field.get("trusted")) and c.new == "no":
        raised.append(
            RaisedChange(
                AlertKind.CHAIN_UNTRUSTED, f"The certificate chain of {name} is no longer trusted."
            )
        )
    if (c := by_field.get("hostname_matches")) and c.new == "no":
        raised.append(
            RaisedChange(
                AlertKind.HOSTNAME_MISMATCH,
                f"Certificate {name} no longer matches its host name.",
            )
        )
    if (c := by_field.get("revocation_status")) and c.new == "REVOKED":
        raised.append(RaisedChange(AlertKind.REVOKED, f"Certificate {name} was revoked."))
    registration = [by_field[f] for f in ("registrar", "statuses") if f in by_field]
    if registration:
        what = "; ".join(
            f"{c.label.lower()} changed from {_was(c)} to {_now(c)}" for c in registration
        )
        raised.append(RaisedChange(AlertKind.REGISTRATION_CHANGED, f"Domain {name}: {what}."))
    if c := by_field.get("name_servers"):
        raised.append(
            RaisedChange(
                AlertKind.NAME_SERVERS_CHANGED,
                f"Domain {name}: name servers changed from {_was(c)} to {_now(c)}.",
            )
        )
    if (c := by_field.get("registered")) and c.new == "no":
        raised.append(
            RaisedChange(
                AlertKind.DOMAIN_NOT_REGISTERED,
                f"Domain {name} is no longer registered: the registry has no record of it.",
            )
        )
    return raised


def failing_message(category: str, name: str, failures: int, error: str | None) -> str:
    reason = f": {error}" if error else "."
    return f"{_what(category)} {name} failed to update {failures} times in a row{reason}"


# --- delivery --------------------------------------------------------------------------------

RETRY_FOR = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s, 1 min, 2 min ... at most 1 h."""
    exponent = min(max(attempts - 1, 0), 16)
    delay: timedelta = FIRST_RETRY * (2**exponent)
    return min(delay, LONGEST_RETRY)


def next_attempt(created_at: datetime, attempts: int, now: datetime) -> datetime | None:
    """When to try again after a failed attempt; None: retried for 24 h, give up (FAILED)."""
    due = now + retry_delay(attempts)
    return None if due > created_at + RETRY_FOR else due


def attempts_within_retry_window() -> int:
    """How many attempts a delivery that always fails gets (for documentation and tests)."""
    elapsed, attempts = timedelta(0), 1
    while elapsed + retry_delay(attempts) <= RETRY_FOR:
        elapsed += retry_delay(attempts)
        attempts += 1
    return attempts
