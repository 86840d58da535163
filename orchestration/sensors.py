"""``due_devices_sensor``: claims due devices in batches and requests refresh runs for them.

Correctness does not rest on the cursor: each batch is *claimed* in the database
(``tracking.refresh.jobs``) before its run is requested, so a device is never in two runs at once
and a tick that is evaluated twice cannot hand out the same devices again. The cursor only records
progress for people looking at the sensor (newest due time handed out, devices claimed).
Backpressure: no more batches are claimed while ``MAX_PENDING_RUNS`` refresh runs are queued or
running; the instance's run queue (``dagster.yaml``) bounds how many execute at once.
"""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import json
from datetime import datetime

import dagster as dg

from orchestration.refresh import (
    BATCH_SIZE_TAG,
    CLAIMANT_TAG,
    FIRST_DUE_TAG,
    LAST_DUE_TAG,
    device_gid,
    refresh_devices_job,
)
from orchestration.resources import TrackingResource
from tracking.core import clock
from tracking.refresh import jobs

BATCH_SIZE = 200  # devices per run
MAX_BATCHES_PER_TICK = 4
MAX_PENDING_RUNS = 8  # refresh runs queued or in progress before the sensor waits
MINIMUM_INTERVAL_SECONDS = 30
PENDING_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def read_cursor(cursor: str | None) -> dict[str, object]:
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _pending_runs(context: dg.SensorEvaluationContext) -> int:
    return context.instance.get_runs_count(
        dg.RunsFilter(job_name=refresh_devices_job.name, statuses=PENDING_STATUSES)
    )


def run_request(batch: jobs.Batch) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=batch.claimed_by,
        run_config={
            "ops": {
                "select_devices": {
                    "config": {"device_ids": [device_gid(i) for i in batch.device_ids]}
                }
            }
        },
        tags={
            CLAIMANT_TAG: batch.claimed_by,
            BATCH_SIZE_TAG: str(len(batch.device_ids)),
            FIRST_DUE_TAG: batch.first_due_at.isoformat(),
            LAST_DUE_TAG: batch.last_due_at.isoformat(),
        },
    )


@dg.sensor(
    job=refresh_devices_job,
    minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        f"Every {MINIMUM_INTERVAL_SECONDS} s: claims active, host- or domain-sourced devices "
        f"whose next update is due, in batches of {BATCH_SIZE} (at most "
        f"{MAX_BATCHES_PER_TICK} per tick, waiting while {MAX_PENDING_RUNS} refresh runs are "
        "pending), and requests a refresh_devices_job run per batch."
    ),
)
def due_devices_sensor(
    context: dg.SensorEvaluationContext, tracking: TrackingResource
) -> dg.SensorResult | dg.SkipReason:
    now = clock.now()
    engine = tracking.engine()
    if not jobs.scheduling_enabled(engine):
        return dg.SkipReason(
            "Domain & SSL Tracking is disabled: no device is updated on a schedule."
        )
    pending = _pending_runs(context)
    room = min(MAX_BATCHES_PER_TICK, MAX_PENDING_RUNS - pending)
    if room <= 0:
        return dg.SkipReason(
            f"{pending} refresh runs are queued or running; "
            "waiting for them before claiming more due devices."
        )
    batches = jobs.claim_due_batches(
        engine,
        now=now,
        batch_size=BATCH_SIZE,
        max_batches=room,
        claimant_prefix=f"due-{now:%Y%m%dT%H%M%S%f}",
    )
    if not batches:
        upcoming = jobs.next_due_at(engine, now=now)
        if upcoming is None:
            return dg.SkipReason(
                "No device is waiting for an update: none is scheduled, "
                "or every scheduled device is being refreshed."
            )
        return dg.SkipReason(
            f"No device is due for an update at {_when(now)}; "
            f"the next one is due at {_when(upcoming)}."
        )
    claimed = sum(len(batch.device_ids) for batch in batches)
    last_due = max(batch.last_due_at for batch in batches)
    previous = read_cursor(context.cursor)
    newest = max(last_due, _parse_time(previous.get("newest_due_at")) or last_due)
    total = previous.get("devices_claimed")
    cursor = {
        "newest_due_at": newest.isoformat(),
        "last_tick_at": now.isoformat(),
        "devices_claimed": (total if isinstance(total, int) else 0) + claimed,
    }
    context.log.info(
        f"Claimed {claimed} due device(s) in {len(batches)} batch(es), "
        f"due from {_when(batches[0].first_due_at)} to {_when(last_due)}."
    )
    return dg.SensorResult(
        run_requests=[run_request(batch) for batch in batches],
        cursor=json.dumps(cursor, sort_keys=True),
    )
