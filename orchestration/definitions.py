"""The Dagster code location (``workspace.yaml``): ``defs``."""

from __future__ import annotations

import dagster as dg

from orchestration.alerts import alerts_sensor, deliver_alerts_job
from orchestration.refresh import raw_snapshots, refresh_devices_job
from orchestration.resources import RESOURCE_KEY, TrackingResource
from orchestration.sensors import due_devices_sensor

defs = dg.Definitions(
    assets=[raw_snapshots],
    jobs=[refresh_devices_job, deliver_alerts_job],
    sensors=[due_devices_sensor, alerts_sensor],
    resources={RESOURCE_KEY: TrackingResource()},
)
