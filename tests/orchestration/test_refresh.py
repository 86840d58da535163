"""refresh_devices_job: scheduled and manual runs against the local TLS/DNS world."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from sqlmodel import col, select

from models import ActivityNote, RawFile, SslDetailsRecord
from models.db import reader, transaction
from orchestration import resources as resources_module
from orchestration.refresh import RAW_SNAPSHOTS, SCHEDULED_AUTHOR
from orchestration.resources import TrackingResource
from tests.conftest import World
from tests.fakes import pki
from tests.fakes.tls_server import FakeTlsServer
from tests.orchestration.helpers import (
    Devices,
    device_row,
    gid,
    launch,
    manual_run,
    run_requests,
    tick,
    update_job,
)
from tests.support.clock import Clock
from tracking.core.ids import encode_id
from tracking.core.schedule import RETRY_INTERVAL
from tracking.manage.access import Viewer
from tracking.manage.edits import set_device_active
from tracking.refresh import jobs
from tracking.refresh.services import Services

MINUTE = timedelta(minutes=1)
WEEK = timedelta(days=7)


def notes(services: Services, device_id: int) -> list[ActivityNote]:
    """Newest first."""
    with reader(services.engine) as session:
        return list(
            session.exec(
                select(ActivityNote)
                .where(ActivityNote.device_id == device_id)
                .order_by(col(ActivityNote.id).desc())
            ).all()
        )


def raw_files(services: Services, device_id: int) -> list[RawFile]:
    with reader(services.engine) as session:
        return list(
            session.exec(
                select(RawFile)
                .where(RawFile.device_id == device_id)
                .order_by(col(RawFile.id).desc())
            ).all()
        )


def output_metadata(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    (event,) = [e for e in result.events_for_node(node) if e.is_successful_output]
    assert event.step_output_data is not None
    return {key: value.value for key, value in event.step_output_data.metadata.items()}


def run_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id)]


def counts(
    updated: int = 0, unchanged: int = 0, failed: int = 0, skipped: int = 0
) -> dict[str, int]:
    return {"updated": updated, "unchanged": unchanged, "failed": failed, "skipped": skipped}


def make_due(services: Services, moved_clock: Clock, *device_ids: int) -> None:
    """Move the clock just past the latest due time of these devices."""
    due = []
    for device_id in device_ids:
        job = update_job(services.engine, device_id)
        assert job is not None
        due.append(job.due_at)
    moved_clock.set(max(due) + MINUTE)


def test_a_due_device_is_refreshed_and_rescheduled(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
) -> None:
    device = devices.ssl(world.host("good.test"))
    created = update_job(services.engine, device)
    assert created is not None and created.interval_seconds == WEEK.total_seconds()
    make_due(services, moved_clock, device)
    raw_before = len(raw_files(services, device))

    (request,) = run_requests(tick(resource, instance))
    result = launch(request, resource, instance)

    assert result.success
    assert result.output_for_node("refresh_devices") == counts(unchanged=1)
    job = update_job(services.engine, device)
    assert job is not None
    assert job.due_at == moved_clock.now + WEEK  # forward by the schedule's interval
    assert (job.claimed_by, job.claimed_until) == (None, None)
    note = notes(services, device)[0]
    assert note.author == SCHEDULED_AUTHOR == "System (scheduled update)"
    assert (
        note.text == f"SSL certificate details checked from {world.host('good.test')}: no changes."
    )
    assert note.created_at == moved_clock.now
    assert device_row(services.engine, device).last_updated_at == moved_clock.now
    assert len(raw_files(services, device)) == raw_before  # nothing new, no RAW file
    assert result.asset_materializations_for_node("refresh_devices") == []
    assert any(
        f"Device {gid(device)}: SSL certificate details checked" in message
        for message in run_messages(instance, result.run_id)
    )
    # Not due again before its next update.
    assert isinstance(tick(resource, instance), dg.SkipReason)


def test_raw_snapshots_written_by_a_run_are_materialized_with_their_metadata(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
) -> None:
    device = devices.ssl(world.host("good.test"))
    with transaction(services.engine) as session:  # the last audit saw an older certificate
        record = session.get(SslDetailsRecord, device)
        assert record is not None
        record.serial_number = "0A"
        record.fingerprint_sha256 = "00:" * 31 + "00"
        session.add(record)
    make_due(services, moved_clock, device)

    (request,) = run_requests(tick(resource, instance))
    result = launch(request, resource, instance)

    assert result.success
    assert result.output_for_node("refresh_devices") == counts(updated=1)
    raw = raw_files(services, device)[0]
    assert raw.created_at == moved_clock.now
    assert raw.id is not None
    (materialization,) = result.asset_materializations_for_node("refresh_devices")
    assert materialization.asset_key == RAW_SNAPSHOTS == dg.AssetKey("raw_snapshots")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["device_id"] == gid(device)
    assert metadata["sha256"] == raw.sha256
    assert metadata["file_name"] == raw.file_name
    assert metadata["raw_file_id"] == encode_id("RawFile", raw.id)
    recorded = instance.get_latest_materialization_event(RAW_SNAPSHOTS)
    assert recorded is not None and recorded.run_id == result.run_id
    assert notes(services, device)[0].text.startswith("SSL certificate details updated")


def test_a_failing_device_does_not_fail_the_batch_and_is_retried_in_an_hour(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
) -> None:
    with FakeTlsServer.standard() as doomed_server:
        failing = devices.ssl(f"good.test:{doomed_server.address[1]}")
    # The server is gone: its port is closed now.
    healthy = devices.ssl(world.host("good.test"))
    make_due(services, moved_clock, failing, healthy)

    (request,) = run_requests(tick(resource, instance))
    result = launch(request, resource, instance)

    assert result.success
    assert result.output_for_node("refresh_devices") == counts(unchanged=1, failed=1)
    metadata = output_metadata(result, "refresh_devices")
    assert metadata["failed"] == 1
    assert list(metadata["failed_devices"]) == [gid(failing)]
    job = update_job(services.engine, failing)
    assert job is not None
    assert job.due_at == moved_clock.now + RETRY_INTERVAL == moved_clock.now + timedelta(hours=1)
    assert job.claimed_by is None
    row = device_row(services.engine, failing)
    assert row.last_update_error
    note = notes(services, failing)[0]
    assert note.author == SCHEDULED_AUTHOR
    assert note.text == f"SSL certificate update failed: {row.last_update_error}"
    healthy_job = update_job(services.engine, healthy)
    assert healthy_job is not None and healthy_job.due_at == moved_clock.now + WEEK


def test_a_manual_launch_refreshes_the_given_devices_and_reports_invalid_ids(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
) -> None:
    host = devices.ssl(world.host("good.test"))  # not due: a manual launch does not care
    pem = devices.ssl(pki.test_ca().leaf("pem.test").pem)  # never scheduled, still updatable
    moved_clock.advance(timedelta(hours=2))
    missing = encode_id("Device", 999_999)
    not_a_device = encode_id("Organization", 1)

    result = manual_run(
        [gid(host), "bogus", gid(pem), not_a_device, missing, gid(host)], resource, instance
    )

    assert result.success
    author = f"System (Dagster run {result.run_id})"
    selection = output_metadata(result, "select_devices")
    assert selection["selected"] == 3
    assert selection["invalid_ids"] == ["bogus", not_a_device]
    assert result.output_for_node("refresh_devices") == counts(unchanged=2, failed=1)
    assert output_metadata(result, "refresh_devices")["author"] == author
    for device_id in (host, pem):
        note = notes(services, device_id)[0]
        assert note.author == author
        assert note.created_at == moved_clock.now
    job = update_job(services.engine, host)
    assert job is not None and job.due_at == moved_clock.now + WEEK
    assert job.claimed_by is None
    assert update_job(services.engine, pem) is None  # still never scheduled


def test_a_manual_launch_leaves_devices_another_run_is_refreshing(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
) -> None:
    device = devices.ssl(world.host("good.test"))
    before = len(notes(services, device))
    jobs.claim(services.engine, [device], claimed_by="run:other", now=moved_clock.now)

    result = manual_run([gid(device)], resource, instance)

    assert result.success
    assert result.output_for_node("refresh_devices") == counts(skipped=1)
    assert len(notes(services, device)) == before
    job = update_job(services.engine, device)
    assert job is not None and job.claimed_by == "run:other"


def test_a_scheduled_run_skips_devices_no_longer_scheduled(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    viewer: Viewer,
    world: World,
    moved_clock: Clock,
) -> None:
    device = devices.ssl(world.host("good.test"))
    make_due(services, moved_clock, device)
    (request,) = run_requests(tick(resource, instance))
    asyncio.run(set_device_active(services, viewer=viewer, device_id=device, active=False))
    before = len(notes(services, device))

    result = launch(request, resource, instance)

    assert result.success
    assert result.output_for_node("refresh_devices") == counts(skipped=1)
    assert len(notes(services, device)) == before
    assert update_job(services.engine, device) is None


def test_a_device_whose_update_cannot_start_is_released_until_the_retry(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    moved_clock: Clock,
) -> None:
    device = devices.ssl(world.host("good.test"))
    make_due(services, moved_clock, device)
    (request,) = run_requests(tick(resource, instance))
    with transaction(services.engine) as session:  # e.g. its source vanished meanwhile
        row = device_row(services.engine, device)
        row.ssl_host = None
        session.add(row)

    result = launch(request, resource, instance)

    assert result.success
    assert result.output_for_node("refresh_devices") == counts(failed=1)
    job = update_job(services.engine, device)
    assert job is not None
    assert (job.claimed_by, job.claimed_until) == (None, None)
    assert job.due_at == moved_clock.now + jobs.DEFER_INTERVAL  # not on every tick
    assert isinstance(tick(resource, instance), dg.SkipReason)


# The system trust store is read here (no test override).
def test_the_resource_builds_services_from_the_dstrack_environment(
    services: Services,
    instance: dg.DagsterInstance,
    devices: Devices,
    world: World,
    tmp_path: Path,
) -> None:
    device = devices.ssl(world.host("good.test"))
    ca_bundle = tmp_path / "roots.pem"
    ca_bundle.write_text(pki.test_ca().root.pem)
    url = services.engine.url.render_as_string(hide_password=False)
    environment = {
        "DSTRACK_DATABASE_URL": url,
        "DSTRACK_DATA_DIR": str(services.settings.data_dir),
        "DSTRACK_DNS_NAMESERVERS": f"{world.dns.nameserver.host}:{world.dns.nameserver.port}",
        "DSTRACK_ALLOW_PRIVATE_TARGETS": "1",
        "DSTRACK_PROBE_TIMEOUT_S": "1",
        "DSTRACK_CA_BUNDLE": str(ca_bundle),
    }
    try:
        result = manual_run([gid(device)], TrackingResource(environment=environment), instance)
    finally:
        resources_module.shared_engine(url).dispose()

    assert result.success
    assert result.output_for_node("refresh_devices") == counts(unchanged=1)
    assert notes(services, device)[0].text.endswith(": no changes.")
