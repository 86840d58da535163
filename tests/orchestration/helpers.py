"""Steps the Dagster tests repeat: a hand-moved clock, devices, sensor ticks, runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import dagster as dg
from sqlalchemy.engine import Engine

from models import Device, DeviceCategory, UpdateJob
from models.db import reader
from orchestration.refresh import refresh_devices_job
from orchestration.resources import RESOURCE_KEY, TrackingResource
from orchestration.sensors import due_devices_sensor
from tracking.core.ids import encode_id
from tracking.manage.access import Viewer
from tracking.manage.devices import NewDevice, create_device
from tracking.refresh.services import Services


@dataclass
class Devices:
    """Creates devices through the domain, as the API does."""

    services: Services
    viewer: Viewer
    org: int

    def ssl(self, source: str, *, active: bool = True) -> int:
        device = asyncio.run(
            create_device(
                self.services,
                viewer=self.viewer,
                new=NewDevice(
                    organization_id=self.org,
                    category=DeviceCategory.SSL_CERTIFICATE,
                    ssl_source=source,
                    active=active,
                ),
            )
        )
        assert device.id is not None
        return device.id


def gid(device_id: int) -> str:
    return encode_id("Device", device_id)


def update_job(engine: Engine, device_id: int) -> UpdateJob | None:
    with reader(engine) as session:
        return session.get(UpdateJob, device_id)


def device_row(engine: Engine, device_id: int) -> Device:
    with reader(engine) as session:
        device = session.get(Device, device_id)
    assert device is not None
    return device


def tick(
    resource: TrackingResource, instance: dg.DagsterInstance, cursor: str | None = None
) -> dg.SensorResult | dg.SkipReason:
    """One evaluation of ``due_devices_sensor``."""
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={RESOURCE_KEY: resource}
    )
    result = due_devices_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason), result
    return result


def run_requests(result: dg.SensorResult | dg.SkipReason) -> list[dg.RunRequest]:
    assert isinstance(result, dg.SensorResult), result
    return list(result.run_requests or [])


def launch(
    request: dg.RunRequest, resource: TrackingResource, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """Execute the run a sensor requested, as the daemon would (its config and tags)."""
    return refresh_devices_job.execute_in_process(
        run_config=request.run_config,
        tags=request.tags,
        instance=instance,
        resources={RESOURCE_KEY: resource},
    )


def manual_run(
    device_ids: list[str],
    resource: TrackingResource,
    instance: dg.DagsterInstance,
    **kwargs: Any,
) -> dg.ExecuteInProcessResult:
    """A launch from the Launchpad with the documented run config."""
    return refresh_devices_job.execute_in_process(
        run_config={"ops": {"select_devices": {"config": {"device_ids": device_ids}}}},
        instance=instance,
        resources={RESOURCE_KEY: resource},
        **kwargs,
    )
