"""The code location loads, names what operators rely on (README: "Refreshes in Dagster"), and the
instance config (deploy/dagster/dagster.yaml) bounds how many refresh runs execute at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from orchestration.definitions import defs
from orchestration.refresh import RAW_SNAPSHOTS
from orchestration.sensors import MINIMUM_INTERVAL_SECONDS

ROOT = Path(__file__).resolve().parents[2]


def test_the_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)


def test_the_definitions_hold_the_job_the_sensor_and_the_asset() -> None:
    job = defs.resolve_job_def("refresh_devices_job")
    sensor = defs.resolve_sensor_def("due_devices_sensor")
    assert sensor.job_name == job.name
    assert sensor.minimum_interval_seconds == MINIMUM_INTERVAL_SECONDS == 30
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert {node.name for node in job.nodes} == {"select_devices", "refresh_devices"}
    assert RAW_SNAPSHOTS in defs.resolve_all_asset_keys()


def test_the_workspace_file_loads_the_code_location(dagster_home: Path) -> None:
    shutil.copy(ROOT / "deploy" / "dagster" / "dagster.yaml", dagster_home / "dagster.yaml")
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "All code locations passed validation" in completed.stdout + completed.stderr


def test_the_instance_queues_runs_within_concurrency_limits(dagster_home: Path) -> None:
    shutil.copy(ROOT / "deploy" / "dagster" / "dagster.yaml", dagster_home / "dagster.yaml")
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert queue.max_concurrent_runs == 4
        assert list(queue.tag_concurrency_limits) == [
            {"key": "dagster/sensor_name", "value": "due_devices_sensor", "limit": 3}
        ]
        assert Path(instance.root_directory) == dagster_home
