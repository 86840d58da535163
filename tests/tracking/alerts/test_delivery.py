"""The outbox: at least once, retried with backoff for 24 h, never twice once SENT, each channel
on its own, an Activity note per delivery."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.support.clock import Clock
from tests.tracking.alerts.support import (
    DAY,
    RecordingNotifier,
    alerts_of,
    create,
    deliveries,
    notes,
    pem_expiring,
)
from tracking.alerts import DeliveryReport, deliver_pending, sweep
from tracking.core.alert_rules import ChannelKind, attempts_within_retry_window, retry_delay
from tracking.core.notify_settings import NotifySettings
from tracking.manage import alerts as manage
from tracking.manage.access import Viewer
from tracking.refresh.services import Services

SETTINGS = NotifySettings(timeout_s=5.0)


def _channels(services: Services, viewer: Viewer, org: int, *names: str) -> list[int]:
    ids = []
    for name in names:
        channel, _ = asyncio.run(
            manage.create_channel(
                services,
                viewer=viewer,
                new=manage.NewChannel(name, ChannelKind.EMAIL, org, email_to=[f"{name}@x.org"]),
            )
        )
        assert channel.id is not None
        ids.append(channel.id)
    manage.set_policy(
        services.engine, viewer=viewer, changes=manage.PolicyChanges(org, channel_ids=ids)
    )
    return ids


def _expiring(services: Services, viewer: Viewer, org: int, clock: Clock, name: str) -> int:
    device = create(services, viewer, org, ssl_source=pem_expiring(clock.now + 5 * DAY), name=name)
    sweep(services.engine)
    return device


def _deliver(
    services: Services, notifier: RecordingNotifier, clock: Clock, concurrency: int = 8
) -> DeliveryReport:
    return asyncio.run(
        deliver_pending(services.engine, notifier, SETTINGS, now=clock, concurrency=concurrency)
    )


def test_a_delivery_is_sent_once_and_noted_on_the_device(
    services: Services,
    viewer: Viewer,
    org: int,
    moved_clock: Clock,
    notifier: RecordingNotifier,
) -> None:
    _channels(services, viewer, org, "ops", "team")
    device = _expiring(services, viewer, org, moved_clock, "shop")
    report = _deliver(services, notifier, moved_clock)
    assert (report.sent, report.failed, report.retrying) == (2, 0, 0)
    message = alerts_of(services.engine, device)[0].message
    assert sorted((s.channel, s.message) for s in notifier.sent) == [
        ("ops", message),
        ("team", message),
    ]
    rows = deliveries(services.engine)
    assert [(d.state, d.attempts, d.delivered_at) for d in rows] == [
        ("SENT", 1, moved_clock.now),
        ("SENT", 1, moved_clock.now),
    ]
    assert {s.key for s in notifier.sent} == {d.idempotency_key for d in rows}
    assert f"Alert sent to ops: {message}" in notes(services.engine, device)
    assert f"Alert sent to team: {message}" in notes(services.engine, device)

    moved_clock.advance(timedelta(hours=1))
    assert _deliver(services, notifier, moved_clock).outcomes == []  # never resent
    assert len(notifier.sent) == 2


def test_a_failing_channel_is_retried_with_backoff_for_a_day_with_the_same_key(
    services: Services,
    viewer: Viewer,
    org: int,
    moved_clock: Clock,
    notifier: RecordingNotifier,
) -> None:
    _channels(services, viewer, org, "down", "up")
    device = _expiring(services, viewer, org, moved_clock, "shop")
    notifier.failing["down"] = "the webhook answered HTTP 503"
    report = _deliver(services, notifier, moved_clock)
    assert (report.sent, report.retrying) == (1, 1)
    failing = next(d for d in deliveries(services.engine) if d.state == "PENDING")
    assert (failing.attempts, failing.last_error) == (1, "the webhook answered HTTP 503")
    assert failing.next_attempt_at == moved_clock.now + retry_delay(1)
    key = failing.idempotency_key

    moved_clock.advance(timedelta(seconds=10))  # not yet due
    assert _deliver(services, notifier, moved_clock).outcomes == []
    attempts = 1
    while True:
        row = next(d for d in deliveries(services.engine) if d.id == failing.id)
        if row.state != "PENDING":
            break
        moved_clock.set(row.next_attempt_at)
        _deliver(services, notifier, moved_clock)
        attempts += 1
    assert (row.state, row.attempts) == ("FAILED", attempts_within_retry_window())
    assert moved_clock.now - failing.created_at <= timedelta(hours=24)
    assert row.idempotency_key == key
    assert any(
        n.startswith(f"Alert could not be sent to down after {row.attempts} attempt(s)")
        for n in notes(services.engine, device)
    )

    notifier.failing.clear()  # FAILED is final
    moved_clock.advance(timedelta(days=2))
    assert _deliver(services, notifier, moved_clock).outcomes == []


def test_a_slow_channel_does_not_hold_up_another(
    services: Services,
    viewer: Viewer,
    org: int,
    moved_clock: Clock,
    notifier: RecordingNotifier,
) -> None:
    _channels(services, viewer, org, "slow", "fast")
    for i in range(3):
        _expiring(services, viewer, org, moved_clock, f"d{i}")
    notifier.slow["slow"] = 0.5
    report = _deliver(services, notifier, moved_clock, concurrency=2)
    assert report.sent == 6
    # The fast channel's three deliveries were done before the slow channel's first.
    assert notifier.finished[:3] == ["fast", "fast", "fast"]


def test_two_workers_at_once_never_send_the_same_delivery(
    services: Services,
    viewer: Viewer,
    org: int,
    moved_clock: Clock,
    notifier: RecordingNotifier,
) -> None:
    _channels(services, viewer, org, "a", "b", "c")
    for i in range(4):
        _expiring(services, viewer, org, moved_clock, f"d{i}")
    notifier.slow.update({"a": 0.05, "b": 0.05, "c": 0.05})

    async def both() -> None:
        await asyncio.gather(
            deliver_pending(services.engine, notifier, SETTINGS, now=moved_clock, worker="w1"),
            deliver_pending(services.engine, notifier, SETTINGS, now=moved_clock, worker="w2"),
        )

    asyncio.run(both())
    keys = [s.key for s in notifier.sent]
    assert len(keys) == 12 and len(set(keys)) == 12
    assert {d.state for d in deliveries(services.engine)} == {"SENT"}


def test_a_deleted_channel_gets_no_more_deliveries(
    services: Services,
    viewer: Viewer,
    org: int,
    moved_clock: Clock,
    notifier: RecordingNotifier,
) -> None:
    (channel,) = _channels(services, viewer, org, "gone")
    _expiring(services, viewer, org, moved_clock, "shop")
    manage.delete_channel(services.engine, viewer=viewer, channel_id=channel)
    assert _deliver(services, notifier, moved_clock).outcomes == []
    (row,) = deliveries(services.engine)
    assert (row.state, row.last_error) == ("FAILED", "the channel was deleted")
    _expiring(services, viewer, org, moved_clock, "later")
    assert len(deliveries(services.engine)) == 1  # no policy names it any more
