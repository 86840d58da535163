"""due_devices_sensor: which devices it hands out, in what batches, and when it waits."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import dagster as dg
import pytest

from orchestration import sensors
from orchestration.refresh import (
    BATCH_SIZE_TAG,
    CLAIMANT_TAG,
    FIRST_DUE_TAG,
    LAST_DUE_TAG,
    refresh_devices_job,
)
from orchestration.resources import TrackingResource
from tests.conftest import World
from tests.fakes import pki
from tests.orchestration.helpers import Devices, gid, run_requests, tick, update_job
from tests.support.clock import Clock
from tracking.manage.access import Viewer
from tracking.manage.edits import set_device_active
from tracking.manage.updates import set_tracking_enabled
from tracking.refresh import jobs
from tracking.refresh.services import Services

MINUTE = timedelta(minutes=1)


def selected(request: dg.RunRequest) -> list[str]:
    config = request.run_config
    assert isinstance(config, dict)
    ids: list[str] = config["ops"]["select_devices"]["config"]["device_ids"]
    return ids


def test_only_due_active_host_sourced_devices_are_requested(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    viewer: Viewer,
    world: World,
    moved_clock: Clock,
) -> None:
    due = devices.ssl(world.host("good.test"))
    also_due = devices.ssl(world.host("expired.test"))
    inactive = devices.ssl(world.host("self-signed.test"))
    asyncio.run(set_device_active(services, viewer=viewer, device_id=inactive, active=False))
    devices.ssl(pki.test_ca().leaf("pem.test").pem)  # PEM: never scheduled
    job, expired_job = update_job(services.engine, due), update_job(services.engine, also_due)
    assert job is not None and expired_job is not None
    assert expired_job.due_at < job.due_at  # an expired certificate is checked daily
    moved_clock.advance(timedelta(days=1, minutes=1))
    not_yet = devices.ssl(world.host("wrong-host.test"))  # created later, due later

    (request,) = run_requests(tick(resource, instance))

    assert selected(request) == [gid(also_due)]
    moved_clock.set(job.due_at)
    (request,) = run_requests(tick(resource, instance))
    # The first run never ran, so also_due's claim has expired: it is handed out again.
    assert selected(request) == [gid(also_due), gid(due)]
    assert update_job(services.engine, not_yet) is not None
    assert update_job(services.engine, inactive) is None


def test_a_run_request_carries_the_batch_in_its_config_tags_and_run_key(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
) -> None:
    first = devices.ssl(world.host("good.test"))
    second = devices.ssl(world.host("wrong-host.test"))
    job = update_job(services.engine, second)
    assert job is not None
    moved_clock.set(job.due_at + MINUTE)

    result = tick(resource, instance)

    (request,) = run_requests(result)
    first_job = update_job(services.engine, first)
    assert first_job is not None
    assert selected(request) == [gid(first), gid(second)]
    assert request.run_key == first_job.claimed_by == request.tags[CLAIMANT_TAG]
    assert request.tags[BATCH_SIZE_TAG] == "2"
    assert request.tags[FIRST_DUE_TAG] == first_job.due_at.isoformat()
    assert request.tags[LAST_DUE_TAG] == job.due_at.isoformat()
    assert first_job.claimed_until == moved_clock.now + jobs.CLAIM_LEASE
    assert isinstance(result, dg.SensorResult) and result.cursor is not None
    assert json.loads(result.cursor) == {
        "devices_claimed": 2,
        "last_tick_at": moved_clock.now.isoformat(),
        "newest_due_at": job.due_at.isoformat(),
    }


def test_claimed_devices_are_not_requested_twice_until_their_claim_expires(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
) -> None:
    device = devices.ssl(world.host("good.test"))
    job = update_job(services.engine, device)
    assert job is not None
    moved_clock.set(job.due_at + MINUTE)

    (first,) = run_requests(tick(resource, instance))
    again = tick(resource, instance)
    moved_clock.advance(jobs.CLAIM_LEASE - MINUTE)
    still = tick(resource, instance)
    moved_clock.advance(MINUTE)  # the first run never finished: its claim has expired
    (retry,) = run_requests(tick(resource, instance))

    assert isinstance(again, dg.SkipReason) and isinstance(still, dg.SkipReason)
    assert "No device is waiting for an update" in (again.skip_message or "")
    assert selected(retry) == selected(first) == [gid(device)]
    assert retry.run_key != first.run_key  # a new run, not a duplicate Dagster would drop


def test_due_devices_are_split_into_batches_and_ticks(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [devices.ssl(world.host("good.test")) for _ in range(5)]
    job = update_job(services.engine, ids[-1])
    assert job is not None
    moved_clock.set(job.due_at + MINUTE)
    monkeypatch.setattr(sensors, "BATCH_SIZE", 2)

    monkeypatch.setattr(sensors, "MAX_BATCHES_PER_TICK", 2)
    first_tick = run_requests(tick(resource, instance))
    second_tick = run_requests(tick(resource, instance))

    assert [selected(r) for r in first_tick] == [
        [gid(i) for i in ids[0:2]],
        [gid(i) for i in ids[2:4]],
    ]
    assert [selected(r) for r in second_tick] == [[gid(ids[4])]]
    assert len({r.run_key for r in first_tick + second_tick}) == 3


def test_the_sensor_waits_while_enough_refresh_runs_are_pending(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    device = devices.ssl(world.host("good.test"))
    job = update_job(services.engine, device)
    assert job is not None
    moved_clock.set(job.due_at + MINUTE)
    monkeypatch.setattr(sensors, "MAX_PENDING_RUNS", 2)
    for status in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED):
        instance.add_run(dg.DagsterRun(job_name=refresh_devices_job.name, status=status))
    instance.add_run(
        dg.DagsterRun(job_name=refresh_devices_job.name, status=dg.DagsterRunStatus.SUCCESS)
    )

    result = tick(resource, instance)

    assert isinstance(result, dg.SkipReason)
    assert "2 refresh runs are queued or running" in (result.skip_message or "")
    held = update_job(services.engine, device)
    assert held is not None and held.claimed_by is None  # nothing claimed while waiting


def test_nothing_due_is_a_readable_skip(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
) -> None:
    nothing = tick(resource, instance)
    device = devices.ssl(world.host("good.test"))
    job = update_job(services.engine, device)
    assert job is not None
    not_yet = tick(resource, instance)

    assert isinstance(nothing, dg.SkipReason) and isinstance(not_yet, dg.SkipReason)
    assert nothing.skip_message == (
        "No device is waiting for an update: none is scheduled, "
        "or every scheduled device is being refreshed."
    )
    assert not_yet.skip_message == (
        f"No device is due for an update at {moved_clock.now.isoformat()}; "
        f"the next one is due at {job.due_at.isoformat()}."
    )


def test_tracking_disabled_is_a_readable_skip(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    viewer: Viewer,
    world: World,
    moved_clock: Clock,
) -> None:
    devices.ssl(world.host("good.test"))
    set_tracking_enabled(services, viewer=viewer, enabled=False)
    moved_clock.advance(timedelta(days=60))

    result = tick(resource, instance)

    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == (
        "Domain & SSL Tracking is disabled: no device is updated on a schedule."
    )


def test_a_broken_cursor_is_ignored(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
) -> None:
    device = devices.ssl(world.host("good.test"))
    job = update_job(services.engine, device)
    assert job is not None
    moved_clock.set(job.due_at + MINUTE)

    result = tick(resource, instance, cursor="not json")

    assert isinstance(result, dg.SensorResult) and result.cursor is not None
    assert json.loads(result.cursor)["devices_claimed"] == 1
