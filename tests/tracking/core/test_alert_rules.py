"""The pure alert rules: thresholds, messages, severities, changes, retries, masking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracking.core.alert_rules import (
    EXPIRED_LEVEL,
    RETRY_FOR,
    AlertKind,
    AlertSeverity,
    attempts_within_retry_window,
    change_alerts,
    check_failures_before_alert,
    clean_thresholds,
    days_left,
    expiry_level,
    expiry_message,
    failing_message,
    next_attempt,
    next_expiry_check,
    retry_delay,
    severity,
)
from tracking.core.changes import Change
from tracking.core.errors import ValidationError
from tracking.core.notices import clean_recipients, mask_secret_value, mask_url, webhook_url

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
THRESHOLDS = (30, 14, 7, 3, 1)


@pytest.mark.parametrize(
    ("left", "level"),
    [
        (40 * DAY, None),
        (30 * DAY + timedelta(seconds=1), None),
        (30 * DAY, 30),
        (20 * DAY, 30),
        (14 * DAY, 14),
        (2 * DAY, 3),  # 30, 14, 7 and 3 crossed at once: the smallest
        (timedelta(hours=1), 1),
        (timedelta(0), EXPIRED_LEVEL),
        (-5 * DAY, EXPIRED_LEVEL),
    ],
)
def test_the_level_is_the_smallest_threshold_crossed(left: timedelta, level: int | None) -> None:
    assert expiry_level(NOW + left, NOW, THRESHOLDS) == level


def test_the_next_check_is_the_next_crossing_then_the_expiry() -> None:
    expires = NOW + 20 * DAY
    assert next_expiry_check(expires, NOW, THRESHOLDS) == expires - 14 * DAY
    assert next_expiry_check(expires, expires - 12 * DAY, THRESHOLDS) == expires - 7 * DAY
    assert next_expiry_check(expires, expires - timedelta(hours=2), THRESHOLDS) == expires
    assert next_expiry_check(expires, expires, THRESHOLDS) is None
    assert next_expiry_check(None, NOW, THRESHOLDS) is None


def test_messages_read_as_the_contract_says() -> None:
    expires = datetime(2026, 5, 15, 9, 30, tzinfo=UTC)
    assert expiry_message("SSL_CERTIFICATE", "shop", expires, NOW) == (
        "Certificate shop expires in 14 days (2026-05-15)"
    )
    assert expiry_message("DOMAIN", "example.org", expires, NOW) == (
        "Domain example.org expires in 14 days (2026-05-15)"
    )
    assert expiry_message("DOMAIN", "example.org", expires, expires + DAY) == (
        "Domain example.org expired on 2026-05-15"
    )
    assert days_left(datetime(2026, 5, 2, 1, 0, tzinfo=UTC), NOW) == 1  # by the calendar
    assert failing_message("DOMAIN", "x.org", 3, "timed out") == (
        "Domain x.org failed to update 3 times in a row: timed out"
    )


def test_severities() -> None:
    assert severity(AlertKind.EXPIRING, 30) is AlertSeverity.WARNING
    assert severity(AlertKind.EXPIRING, 3) is AlertSeverity.CRITICAL
    assert severity(AlertKind.EXPIRED) is AlertSeverity.CRITICAL
    assert severity(AlertKind.CERTIFICATE_CHANGED) is AlertSeverity.INFO
    assert severity(AlertKind.NAME_SERVERS_CHANGED) is AlertSeverity.WARNING
    assert severity(AlertKind.DOMAIN_NOT_REGISTERED) is AlertSeverity.CRITICAL


def test_which_change_raises_what() -> None:
    changes = [
        Change("fingerprint_sha256", "SHA-256 Fingerprint", "AA", "BB"),
        Change("trusted", "Chain Trusted", "yes", "no"),
        Change("hostname_matches", "Host Name Matches", "no", "yes"),  # turned good: nothing
        Change("serial_number", "Serial Number", "01", "02"),
        Change("registrar", "Registrar", "A", "B"),
        Change("statuses", "Statuses", "ok", "client hold"),
        Change("name_servers", "Name servers", "ns1", "ns2"),
        Change("registered", "Registered", "yes", "no"),
    ]
    raised = {r.kind: r.message for r in change_alerts("thing", changes)}
    assert list(raised) == [
        AlertKind.CERTIFICATE_CHANGED,
        AlertKind.CHAIN_UNTRUSTED,
        AlertKind.REGISTRATION_CHANGED,
        AlertKind.NAME_SERVERS_CHANGED,
        AlertKind.DOMAIN_NOT_REGISTERED,
    ]
    assert raised[AlertKind.REGISTRATION_CHANGED] == (
        "Domain thing: registrar changed from A to B; statuses changed from ok to client hold."
    )
    assert change_alerts("x", [Change("trusted", "Chain Trusted", "no", "yes")]) == []


@pytest.mark.parametrize("values", [[], [0], [-3], [366], list(range(1, 12))])
def test_absurd_thresholds_are_refused(values: list[int]) -> None:
    with pytest.raises(ValidationError) as refused:
        clean_thresholds(values)
    assert refused.value.field == "expiryThresholdsDays"


def test_thresholds_are_stored_distinct_and_largest_first() -> None:
    assert clean_thresholds([7, 30, 7, 1]) == (30, 7, 1)
    with pytest.raises(ValidationError):
        check_failures_before_alert(0)


def test_retries_back_off_exponentially_for_24_hours() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(20) == timedelta(hours=1)
    created = NOW
    assert next_attempt(created, 1, NOW) == NOW + timedelta(seconds=30)
    assert next_attempt(created, 30, created + RETRY_FOR - timedelta(minutes=1)) is None
    assert 25 <= attempts_within_retry_window() <= 40


def test_secrets_are_masked() -> None:
    assert mask_url("https://u:p@hooks.example.com/services/T1/B2/XYZ?token=abc&x") == (
        "https://****@hooks.example.com/services/****/****/****?token=****&****"
    )
    assert mask_url("slack://TokenA/TokenB/TokenC", keep_host=False) == "slack://****"
    assert mask_url("json://host:8080/notify") == "json://host:8080/notify"
    assert "hunter2" not in mask_secret_value("failed: https://x:hunter2@h/p/secret")


@pytest.mark.parametrize(
    "address", ["plain", "a@b", "a b@example.com", "a@example..com", "<a@example.com>", "@x.org"]
)
def test_bad_email_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValidationError):
        clean_recipients([address])


def test_webhook_urls_are_http_or_https() -> None:
    assert webhook_url(" https://example.com/hook ") == "https://example.com/hook"
    for bad in ("ftp://example.com", "example.com/hook", "https://", "http://exa mple.com"):
        with pytest.raises(ValidationError):
            webhook_url(bad)
