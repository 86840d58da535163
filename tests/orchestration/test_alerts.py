"""alerts_sensor and deliver_alerts_job: the sweep every 60 s, runs while deliveries are
pending (never piling up), and the deliveries in the run's output."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import dagster as dg

from orchestration.alerts import (
    ALERTS_INTERVAL_SECONDS,
    alerts_sensor,
    deliver_alerts_job,
)
from orchestration.definitions import defs
from orchestration.resources import RESOURCE_KEY, TrackingResource
from tests.orchestration.helpers import Devices
from tests.support.clock import Clock
from tests.tracking.alerts.support import deliveries, http_receiver, notes, pem_expiring
from tracking.core.alert_rules import ChannelKind
from tracking.manage import alerts as manage
from tracking.manage.access import Viewer
from tracking.refresh.services import Services


def _tick(
    resource: TrackingResource, instance: dg.DagsterInstance
) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(instance=instance, resources={RESOURCE_KEY: resource})
    result = alerts_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason), result
    return result


def _webhook_policy(services: Services, viewer: Viewer, url: str) -> None:
    channel, _ = asyncio.run(
        manage.create_channel(
            services,
            viewer=viewer,
            new=manage.NewChannel("hook", ChannelKind.WEBHOOK, None, url=url),
        )
    )
    manage.set_policy(
        services.engine, viewer=viewer, changes=manage.PolicyChanges(None, channel_ids=[channel.id])
    )


def test_the_definitions_hold_the_alerts_sensor_and_job() -> None:
    sensor = defs.resolve_sensor_def("alerts_sensor")
    job = defs.resolve_job_def("deliver_alerts_job")
    assert sensor.job_name == job.name
    assert sensor.minimum_interval_seconds == ALERTS_INTERVAL_SECONDS == 60
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert {node.name for node in job.nodes} == {"deliver_alerts"}


def test_nothing_pending_is_a_skip_that_says_what_the_sweep_did(
    resource: TrackingResource, instance: dg.DagsterInstance, org: int
) -> None:
    result = _tick(resource, instance)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == (
        "Swept 0 device(s) due for an expiry check, raised 0 alert(s); no delivery is pending."
    )


def test_the_sensor_sweeps_requests_one_run_and_the_run_delivers(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    viewer: Viewer,
    moved_clock: Clock,
) -> None:
    with http_receiver() as receiver:
        _webhook_policy(services, viewer, receiver.url)
        device = devices.ssl(pem_expiring(moved_clock.now + timedelta(days=6)))

        result = _tick(resource, instance)
        assert isinstance(result, dg.SensorResult)
        (request,) = result.run_requests or []
        again = _tick(resource, instance)  # the same pending deliveries: the same run key
        assert isinstance(again, dg.SensorResult)
        assert [r.run_key for r in again.run_requests or []] == [request.run_key]

        run = deliver_alerts_job.execute_in_process(
            instance=instance, resources={RESOURCE_KEY: resource}, tags=request.tags
        )
    assert run.success
    assert run.output_for_node("deliver_alerts") == {"sent": 1, "failed": 0, "retrying": 0}
    (materialized,) = [e for e in run.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = materialized.step_output_data.metadata  # type: ignore[union-attr]
    (listed,) = metadata["deliveries"].value  # type: ignore[union-attr]
    assert listed["state"] == "SENT" and listed["channel"] == "hook"
    messages = [
        e.message for e in instance.all_logs(run.run_id) if e.message and "SENT: hook" in e.message
    ]
    assert len(messages) == 1
    (request_seen,) = receiver.requests
    (row,) = deliveries(services.engine)
    assert (row.state, request_seen.headers["webhook-id"]) == ("SENT", row.idempotency_key)
    assert any(
        n.startswith("Alert sent to hook: Certificate") for n in notes(services.engine, device)
    )

    done = _tick(resource, instance)
    assert isinstance(done, dg.SkipReason)
    assert "no delivery is pending" in (done.skip_message or "")


def test_the_sensor_waits_while_a_delivery_run_is_in_flight(
    services: Services,
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    devices: Devices,
    viewer: Viewer,
    moved_clock: Clock,
) -> None:
    _webhook_policy(services, viewer, "http://127.0.0.1:9/hook")
    devices.ssl(pem_expiring(moved_clock.now + timedelta(days=6)))
    first = _tick(resource, instance)
    assert isinstance(first, dg.SensorResult)
    instance.add_run(
        dg.DagsterRun(job_name=deliver_alerts_job.name, status=dg.DagsterRunStatus.STARTED)
    )
    waiting = _tick(resource, instance)
    assert isinstance(waiting, dg.SkipReason)
    assert "1 deliveries are pending and a deliver_alerts_job run is already queued or" in (
        waiting.skip_message or ""
    )
