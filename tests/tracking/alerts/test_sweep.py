"""The expiry sweep: by the calendar, once per (device, expiry instant, threshold), the smallest
threshold crossed, nothing for inactive or muted devices, renewals resolve."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.support.clock import Clock
from tests.tracking.alerts.support import (
    DAY,
    alerts_of,
    create,
    deliveries,
    execute,
    notes,
    pem_expiring,
)
from tracking.alerts import sweep
from tracking.alerts.tables import ALERTS
from tracking.core.alert_rules import ChannelKind
from tracking.manage import alerts as manage
from tracking.manage.access import Viewer
from tracking.manage.edits import DeviceChanges, set_device_active, update_device
from tracking.refresh.services import Services


def _pem_device(
    services: Services, viewer: Viewer, org: int, expires: datetime, **kw: object
) -> int:
    return create(services, viewer, org, ssl_source=pem_expiring(expires), **kw)  # type: ignore[arg-type]


def _date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def test_each_threshold_alerts_once_by_the_calendar(
    services: Services, viewer: Viewer, org: int, moved_clock: Clock
) -> None:
    expires = moved_clock.now + 40 * DAY
    device = _pem_device(services, viewer, org, expires, name="shop")
    assert sweep(services.engine).raised == 0  # 40 days out: no threshold crossed

    moved_clock.advance(10 * DAY + timedelta(minutes=1))  # 30 days minus a minute left
    report = sweep(services.engine)
    (first,) = alerts_of(services.engine, device)
    assert (report.raised, first.kind, first.threshold_days, first.state) == (
        1,
        "EXPIRING",
        30,
        "OPEN",
    )
    assert first.message == f"Certificate shop expires in 30 days ({_date(expires)})"
    assert first.severity == "WARNING"
    assert sweep(services.engine).raised == 0  # once, ever
    moved_clock.advance(timedelta(hours=6))
    assert sweep(services.engine).raised == 0

    moved_clock.set(expires - 14 * DAY + timedelta(seconds=30))  # no refresh in between
    sweep(services.engine)
    older, newer = alerts_of(services.engine, device)
    assert (newer.threshold_days, newer.message) == (
        14,
        f"Certificate shop expires in 14 days ({_date(expires)})",
    )
    assert older.state == "RESOLVED"  # superseded by the smaller threshold


def test_several_thresholds_crossed_at_once_give_one_alert_for_the_smallest(
    services: Services, viewer: Viewer, org: int, moved_clock: Clock
) -> None:
    expires = moved_clock.now + 2 * DAY + timedelta(hours=1)
    device = _pem_device(services, viewer, org, expires, name="late")
    sweep(services.engine)
    (alert,) = alerts_of(services.engine, device)
    assert (alert.kind, alert.threshold_days, alert.severity) == ("EXPIRING", 3, "CRITICAL")
    assert alert.message == f"Certificate late expires in 2 days ({_date(expires)})"

    moved_clock.set(expires + timedelta(minutes=5))
    sweep(services.engine)
    _, expired = alerts_of(services.engine, device)
    assert (expired.kind, expired.threshold_days, expired.severity) == ("EXPIRED", 0, "CRITICAL")
    assert expired.message == f"Certificate late expired on {_date(expires)}"
    moved_clock.advance(30 * DAY)
    assert sweep(services.engine).raised == 0


def test_the_unique_key_refuses_a_second_alert_for_the_same_threshold(
    services: Services, viewer: Viewer, org: int, moved_clock: Clock
) -> None:
    expires = moved_clock.now + 5 * DAY
    device = _pem_device(services, viewer, org, expires)
    sweep(services.engine)
    (alert,) = alerts_of(services.engine, device)
    with pytest.raises(sa.exc.IntegrityError):
        execute(
            services.engine,
            sa.insert(ALERTS).values(
                device_id=device,
                kind="EXPIRING",
                severity="WARNING",
                state="OPEN",
                message="again",
                created_at=moved_clock.now,
                expiry_at=alert.expiry_at,
                threshold_days=alert.threshold_days,
            ),
        )


def test_inactive_and_muted_devices_never_alert_until_they_are_back(
    services: Services, viewer: Viewer, org: int, moved_clock: Clock
) -> None:
    expires = moved_clock.now + 10 * DAY
    inactive = _pem_device(services, viewer, org, expires, name="off", active=False)
    muted = _pem_device(services, viewer, org, expires, name="quiet")
    manage.set_alerts_muted(services.engine, viewer=viewer, device_id=muted, muted=True)
    assert sweep(services.engine).raised == 0
    assert alerts_of(services.engine) == []
    assert "Alerts muted by admin." in notes(services.engine, muted)

    manage.set_alerts_muted(services.engine, viewer=viewer, device_id=muted, muted=False)
    asyncio.run(set_device_active(services, viewer=viewer, device_id=inactive, active=True))
    sweep(services.engine)
    assert sorted((a.device_id, a.threshold_days) for a in alerts_of(services.engine)) == [
        (inactive, 14),
        (muted, 14),
    ]


def test_a_renewal_resolves_the_expiry_alerts_and_rearms_the_thresholds(
    services: Services, viewer: Viewer, org: int, moved_clock: Clock
) -> None:
    expires = moved_clock.now + 6 * DAY
    device = _pem_device(services, viewer, org, expires, name="renewed")
    sweep(services.engine)
    (old,) = alerts_of(services.engine, device)
    assert old.state == "OPEN"

    renewed = moved_clock.now + 20 * DAY
    asyncio.run(
        update_device(
            services,
            viewer=viewer,
            device_id=device,
            changes=DeviceChanges(ssl_source=pem_expiring(renewed, cn="renewed.example.com")),
        )
    )
    (old, *_) = alerts_of(services.engine, device)
    assert old.state == "RESOLVED"  # by the update that saw the later expiry
    sweep(services.engine)
    new = alerts_of(services.engine, device)[-1]
    assert (new.kind, new.threshold_days, new.expiry_at) == ("EXPIRING", 30, renewed)


def test_an_organization_policy_sets_its_own_thresholds_and_channels(
    services: Services, viewer: Viewer, org: int, moved_clock: Clock
) -> None:
    channel, _ = asyncio.run(
        manage.create_channel(
            services,
            viewer=viewer,
            new=manage.NewChannel("ops", ChannelKind.EMAIL, org, email_to=["ops@example.com"]),
        )
    )
    assert channel.id is not None
    manage.set_policy(
        services.engine,
        viewer=viewer,
        changes=manage.PolicyChanges(org, thresholds_days=[60, 10], channel_ids=[channel.id]),
    )
    device = _pem_device(services, viewer, org, moved_clock.now + 45 * DAY, name="far")
    sweep(services.engine)
    (alert,) = alerts_of(services.engine, device)
    assert alert.threshold_days == 60
    (delivery,) = deliveries(services.engine)
    assert (delivery.alert_id, delivery.channel_id, delivery.state) == (
        alert.id,
        channel.id,
        "PENDING",
    )
    assert delivery.idempotency_key.startswith("msg_")


def test_many_devices_are_swept_in_batches(
    services: Services, viewer: Viewer, org: int, moved_clock: Clock
) -> None:
    devices = [
        _pem_device(services, viewer, org, moved_clock.now + (5 + i) * DAY) for i in range(7)
    ]
    report = sweep(services.engine, batch_size=3)
    assert (report.looked_at, report.raised, report.batches) == (7, 7, 3)
    assert sorted(a.device_id for a in alerts_of(services.engine)) == devices
