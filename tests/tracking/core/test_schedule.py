"""The update schedule, rule by rule (the reference's "Update schedule")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracking.core.schedule import Outcome, iso_duration, job_wanted, next_update

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("left", "interval", "iso"),
    [
        (timedelta(days=200), timedelta(days=30), "P30D"),
        (timedelta(days=90, seconds=1), timedelta(days=30), "P30D"),
        (timedelta(days=90), timedelta(days=7), "P7D"),  # "> 90 days" is strict
        (timedelta(days=60), timedelta(days=7), "P7D"),
        (timedelta(days=30, seconds=1), timedelta(days=7), "P7D"),
        (timedelta(days=30), timedelta(hours=48), "PT48H"),
        (timedelta(days=20), timedelta(hours=48), "PT48H"),
        (timedelta(days=7, seconds=1), timedelta(hours=48), "PT48H"),
        (timedelta(days=7), timedelta(hours=24), "PT24H"),  # "<= 7 days"
        (timedelta(days=3), timedelta(hours=24), "PT24H"),
        (timedelta(0), timedelta(hours=24), "PT24H"),
        (-timedelta(days=1), timedelta(hours=24), "PT24H"),  # expired: still every 24 hours
        (-timedelta(days=400), timedelta(hours=24), "PT24H"),
    ],
)
def test_interval_follows_the_time_left(left: timedelta, interval: timedelta, iso: str) -> None:
    planned = next_update(expires_at=NOW + left, now=NOW, outcome=Outcome.OK)
    assert planned.interval == interval
    assert planned.due_at == NOW + interval
    assert planned.iso_interval == iso


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.DNS_FAILED])
@pytest.mark.parametrize("left", [timedelta(days=200), timedelta(days=3), -timedelta(days=1)])
def test_failures_retry_one_hour_later_whatever_the_expiry(
    outcome: Outcome, left: timedelta
) -> None:
    planned = next_update(expires_at=NOW + left, now=NOW, outcome=outcome)
    assert planned.due_at == NOW + timedelta(hours=1)
    assert planned.iso_interval == "PT1H"


def test_reasons_are_readable() -> None:
    assert next_update(
        expires_at=NOW + timedelta(days=200), now=NOW, outcome=Outcome.OK
    ).reason == ("expires in 200 days (more than 90 days)")
    assert next_update(expires_at=NOW - timedelta(days=1), now=NOW, outcome=Outcome.OK).reason == (
        "expired 24 hours ago"
    )
    assert (
        "DNS look-up failed"
        in next_update(expires_at=None, now=NOW, outcome=Outcome.DNS_FAILED).reason
    )
    assert next_update(expires_at=None, now=NOW, outcome=Outcome.OK).reason == (
        "the expiry date is unknown"
    )


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=30), "P30D"),
        (timedelta(days=7), "P7D"),
        (timedelta(hours=48), "PT48H"),
        (timedelta(hours=24), "PT24H"),
        (timedelta(hours=1), "PT1H"),
        (timedelta(seconds=90), "PT90S"),
    ],
)
def test_iso_durations(delta: timedelta, text: str) -> None:
    assert iso_duration(delta) == text


@pytest.mark.parametrize(
    ("category", "active", "kind", "domain", "enabled", "wanted"),
    [
        ("SSL_CERTIFICATE", True, "HOST", None, True, True),
        ("SSL_CERTIFICATE", True, "PEM", None, True, False),  # never for PEM certificates
        ("SSL_CERTIFICATE", False, "HOST", None, True, False),  # inactive
        ("SSL_CERTIFICATE", True, "HOST", None, False, False),  # tracking disabled
        ("DOMAIN", True, None, "example.com", True, True),
        ("DOMAIN", False, None, "example.com", True, False),
        ("DOMAIN", True, None, "example.com", False, False),
        ("DOMAIN", True, None, "*.example.com", True, False),  # wildcards are never looked up
        ("STANDARD", True, None, None, True, False),
    ],
)
def test_which_devices_have_a_job(
    category: str, active: bool, kind: str | None, domain: str | None, enabled: bool, wanted: bool
) -> None:
    assert (
        job_wanted(
            category=category,
            active=active,
            ssl_source_kind=kind,
            domain=domain,
            tracking_enabled=enabled,
        )
        is wanted
    )
