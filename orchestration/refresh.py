"""``refresh_devices_job``: refresh a batch of devices' audits (``tracking.refresh``).

Launched by ``due_devices_sensor`` for due devices, or by hand from the Launchpad with::

    ops:
      select_devices:
        config:
          device_ids: ["<device ID as the GraphQL API shows it>", ...]

Every RAW snapshot an update writes is recorded as a materialization of ``raw_snapshots``.
One device failing never fails the batch: it is recorded on the device (``lastUpdateError``,
an Activity note, a retry in one hour) and counted here.
"""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.

import asyncio
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field

from orchestration.resources import RESOURCE_KEY, TrackingResource
from tracking.core.ids import decode_pk, encode_id
from tracking.refresh.events import StoredRawFile
from tracking.refresh.pipeline import AuditResult
from tracking.refresh.runs import refresh_run

RAW_SNAPSHOTS = dg.AssetKey("raw_snapshots")
CLAIMANT_TAG = "dstrack/claimant"
BATCH_SIZE_TAG = "dstrack/batch_size"
FIRST_DUE_TAG = "dstrack/first_due_at"
LAST_DUE_TAG = "dstrack/last_due_at"
PARENT_RUN_TAG = "dagster/parent_run_id"  # set by Dagster on re-executions
SCHEDULED_AUTHOR = "System (scheduled update)"
DEFAULT_CONCURRENCY = 16
MAX_CONCURRENCY = 64

T = TypeVar("T")

raw_snapshots = dg.AssetSpec(
    RAW_SNAPSHOTS,
    description=(
        "RAW files of device audits: the certificate chain as served (with the handshake "
        "facts), written whenever an update finds something new. Materialized by "
        "refresh_devices_job, one event per file, with the device ID, sha256 and file name."
    ),
    group_name="dstrack",
    kinds={"file"},
)


def device_gid(device_id: int) -> str:
    return encode_id("Device", device_id)


def author_for(run_id: str, *, scheduled: bool) -> str:
    """Who the Activity notes of a run are from."""
    return SCHEDULED_AUTHOR if scheduled else f"System (Dagster run {run_id})"


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also when called from a thread with a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# --- select_devices ----------------------------------------------------------------------


class SelectDevicesConfig(dg.Config):
    device_ids: list[str] = Field(
        description="Device IDs, the same as the GraphQL API shows (e.g. the `id` of `device`)."
    )


@dg.op(
    description="Decode the device IDs to refresh; IDs that are not device IDs are reported.",
    out=dg.Out(list[int], description="Primary keys of the devices to refresh, in order."),
)
def select_devices(
    context: dg.OpExecutionContext, config: SelectDevicesConfig
) -> dg.Output[list[int]]:
    selected: list[int] = []
    invalid: list[str] = []
    for gid in config.device_ids:
        pk = decode_pk(gid, "Device")
        if pk is None:
            invalid.append(gid)
        elif pk not in selected:
            selected.append(pk)
    for gid in invalid:
        context.log.warning(f"Ignored {gid!r}: not a device ID.")
    context.log.info(f"{len(selected)} device(s) selected, {len(invalid)} invalid ID(s).")
    return dg.Output(
        selected,
        metadata={
            "requested": len(config.device_ids),
            "selected": len(selected),
            "invalid": len(invalid),
            "invalid_ids": dg.MetadataValue.json(invalid),
        },
    )


# --- refresh_devices ---------------------------------------------------------------------


class RefreshDevicesConfig(dg.Config):
    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY,
        description=f"Devices probed at the same time (1 to {MAX_CONCURRENCY}).",
    )


@dataclass
class RefreshSummary:
    updated: list[str]
    unchanged: list[str]
    failed: dict[str, str]
    skipped: dict[str, str]

    def counts(self) -> dict[str, int]:
        return {
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "failed": len(self.failed),
            "skipped": len(self.skipped),
        }


def _materialization(device_id: int, raw: StoredRawFile) -> dg.AssetMaterialization:
    assert raw.id is not None
    raw_gid = encode_id("RawFile", raw.id)
    return dg.AssetMaterialization(
        asset_key=RAW_SNAPSHOTS,
        description=f"RAW file {raw.file_name} of device {device_gid(device_id)}",
        metadata={
            "device_id": device_gid(device_id),
            "sha256": raw.sha256,
            "file_name": raw.file_name,
            "raw_file_id": raw_gid,
            "content_type": raw.content_type,
            "size_bytes": raw.size_bytes,
            "path": dg.MetadataValue.path(f"/raw/{raw_gid}"),
        },
    )


def _report(
    context: dg.OpExecutionContext, results: Sequence[AuditResult], summary: RefreshSummary
) -> None:
    for result in results:
        gid = device_gid(result.device_id)
        if result.error is not None:
            summary.failed[gid] = result.error.message
            context.log.warning(
                f"Device {gid}: update failed ({result.error.code}): "
                f"{result.note or result.error.message}"
            )
            continue
        (summary.updated if result.changed else summary.unchanged).append(gid)
        planned = result.next_update
        due = f" Next update: {planned.due_at.isoformat()}." if planned else ""
        context.log.info(f"Device {gid}: {result.note}{due}")
        if result.raw_file is not None:
            context.log_event(_materialization(result.device_id, result.raw_file))


def _skip(
    context: dg.OpExecutionContext, summary: RefreshSummary, ids: Sequence[int], why: str
) -> None:
    for device_id in ids:
        gid = device_gid(device_id)
        summary.skipped[gid] = why
        context.log.info(f"Device {gid}: skipped, {why}.")


@dg.op(
    description=(
        "Refresh the audits of the selected devices (bounded concurrency) through "
        "tracking.refresh.pipeline.update_many; record RAW snapshots as raw_snapshots "
        "materializations."
    ),
    out=dg.Out(dict[str, int], description="Devices updated / unchanged / failed / skipped."),
)
def refresh_devices(
    context: dg.OpExecutionContext,
    config: RefreshDevicesConfig,
    tracking: TrackingResource,
    device_ids: list[int],
) -> dg.Output[dict[str, int]]:
    tags = context.run.tags
    scheduled = CLAIMANT_TAG in tags and PARENT_RUN_TAG not in tags
    author = author_for(context.run_id, scheduled=scheduled)
    concurrency = max(1, min(config.concurrency, MAX_CONCURRENCY))
    context.log.info(
        f"Refreshing {len(device_ids)} device(s), {concurrency} at a time, as {author!r}."
    )
    report = run_async(
        refresh_run(
            tracking.services(),
            device_ids,
            claimant=tags[CLAIMANT_TAG] if scheduled else f"run:{context.run_id}",
            scheduled=scheduled,
            author=author,
            concurrency=concurrency,
        )
    )
    summary = RefreshSummary(updated=[], unchanged=[], failed={}, skipped={})
    _skip(context, summary, report.busy, "another run is refreshing it")
    _skip(
        context,
        summary,
        report.unscheduled,
        "it is no longer scheduled (inactivated, deleted, or tracking switched off)",
    )
    if report.released:
        context.log.warning(
            f"{len(report.released)} device(s) were not updated; released until the next "
            "retry: " + ", ".join(device_gid(i) for i in report.released)
        )
    _report(context, report.results, summary)
    counts = summary.counts()
    context.log.info(
        f"Done: {counts['updated']} updated, {counts['unchanged']} unchanged, "
        f"{counts['failed']} failed, {counts['skipped']} skipped."
    )
    return dg.Output(
        counts,
        metadata={
            **counts,
            "author": author,
            "failed_devices": dg.MetadataValue.json(summary.failed),
            "skipped_devices": dg.MetadataValue.json(summary.skipped),
        },
    )


@dg.job(
    description=(
        "Refresh devices' SSL certificate / domain details. Launched by due_devices_sensor, "
        "or by hand with ops.select_devices.config.device_ids (GraphQL device IDs)."
    ),
    tags={"dstrack/kind": "refresh"},
    # Bound here rather than only in Definitions: Definitions would otherwise rebuild the
    # sensor targeting this job, which (Dagster 1.13) warns about the beta `owners` parameter.
    resource_defs={RESOURCE_KEY: TrackingResource()},
)
def refresh_devices_job() -> None:
    refresh_devices(select_devices())
