"""``alerts_sensor`` and ``deliver_alerts_job``: expiry alerts by the calendar, and the outbox
delivered while deliveries are pending.

Every 60 s the sensor runs the expiry sweep (``tracking.alerts.sweep``: the database only) and,
when deliveries are due, requests a ``deliver_alerts_job`` run. Its run key is the state of the
pending deliveries, so ticks that see the same pending deliveries never pile up runs; while a
run is queued or in progress the sensor waits. The op ``deliver_alerts`` makes one delivery
pass: each delivery is logged, and the output's metadata lists them.
"""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import json

import dagster as dg

from orchestration.refresh import run_async
from orchestration.resources import RESOURCE_KEY, TrackingResource
from orchestration.sensors import PENDING_STATUSES
from tracking.alerts import alerting_of, deliver_pending, next_due, pending_key, sweep
from tracking.core import clock
from tracking.core.alert_rules import DeliveryState
from tracking.core.ids import encode_id

ALERTS_INTERVAL_SECONDS = 60
PENDING_TAG = "dstrack/pending_deliveries"


@dg.op(
    description="One delivery pass of the alert outbox: every due delivery, each channel on its "
    "own, retried with backoff for 24 h.",
    out=dg.Out(dict[str, int], description="Deliveries sent, failed for good, to be retried."),
)
def deliver_alerts(
    context: dg.OpExecutionContext, tracking: TrackingResource
) -> dg.Output[dict[str, int]]:
    services = tracking.services()
    alerting = alerting_of(services)
    report = run_async(deliver_pending(services.engine, alerting.notifier, alerting.settings))
    for outcome in report.outcomes:
        line = f"{outcome.state.value}: {outcome.channel}: {outcome.message}"
        if outcome.error:
            line += f" ({outcome.error})"
        if outcome.state is DeliveryState.SENT:
            context.log.info(line)
        else:
            context.log.warning(line)
    counts = {"sent": report.sent, "failed": report.failed, "retrying": report.retrying}
    context.log.info(
        f"Sent {report.sent}, failed {report.failed}, to be retried {report.retrying}."
    )
    deliveries = [
        {
            "alert": encode_id("Alert", o.alert_id),
            "device": encode_id("Device", o.device_id),
            "channel": o.channel,
            "state": o.state.value,
            "message": o.message,
            "error": o.error,
        }
        for o in report.outcomes
    ]
    return dg.Output(
        counts,
        metadata={**counts, "deliveries": dg.MetadataValue.json(deliveries)},
    )


@dg.job(
    description="Delivers pending alert notifications (e-mail, webhooks, Apprise). Requested by "
    "alerts_sensor while deliveries are pending; can be launched by hand without config.",
    tags={"dstrack/kind": "alerts"},
    # Bound here, as refresh_devices_job does: Definitions would otherwise rebuild the sensor.
    resource_defs={RESOURCE_KEY: TrackingResource()},
)
def deliver_alerts_job() -> None:
    deliver_alerts()


@dg.sensor(
    job=deliver_alerts_job,
    minimum_interval_seconds=ALERTS_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        f"Every {ALERTS_INTERVAL_SECONDS} s: sweeps expiry thresholds (raising EXPIRING/EXPIRED "
        "alerts by the calendar) and requests a deliver_alerts_job run while deliveries are "
        "pending."
    ),
)
def alerts_sensor(
    context: dg.SensorEvaluationContext, tracking: TrackingResource
) -> dg.SensorResult | dg.SkipReason:
    engine = tracking.engine()
    now = clock.now()
    swept = sweep(engine, now=now)
    said = (
        f"Swept {swept.looked_at} device(s) due for an expiry check, raised {swept.raised} alert(s)"
    )
    if swept.raised:
        context.log.info(said + ".")
    pending, key = pending_key(engine, now=now)
    if pending == 0:
        upcoming = next_due(engine)
        later = (
            f"; the next retry is due at {upcoming.isoformat(timespec='seconds')}"
            if upcoming
            else ""
        )
        return dg.SkipReason(f"{said}; no delivery is pending{later}.")
    in_flight = context.instance.get_runs_count(
        dg.RunsFilter(job_name=deliver_alerts_job.name, statuses=PENDING_STATUSES)
    )
    if in_flight:
        return dg.SkipReason(
            f"{said}; {pending} deliveries are pending and a deliver_alerts_job run is "
            "already queued or running: waiting for it."
        )
    cursor = {"last_tick_at": now.isoformat(), "pending": pending, "raised": swept.raised}
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"deliver-{key}", tags={PENDING_TAG: str(pending)})],
        cursor=json.dumps(cursor, sort_keys=True),
    )
