"""A refresh run's life: claim its devices, update them, and give back what it still holds.

Dagster's op, a command or a test calls :func:`refresh_run`; the claim keeps a device out of
every other run while this one works on it (see ``tracking.refresh.jobs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tracking.core import clock
from tracking.refresh import jobs
from tracking.refresh.pipeline import AuditResult, update_many
from tracking.refresh.services import Services


@dataclass
class RunReport:
    """What a run did with the devices it was asked for."""

    results: list[AuditResult] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)  # held by another run: skipped
    unscheduled: list[int] = field(default_factory=list)  # no job any more: skipped (scheduled)
    released: list[int] = field(default_factory=list)  # not updated: given back, deferred


async def refresh_run(
    services: Services,
    device_ids: Sequence[int],
    *,
    claimant: str,
    scheduled: bool,
    author: str,
    concurrency: int,
) -> RunReport:
    """Update ``device_ids`` as one run.

    The scheduled devices are held for the run (a sensor's run renews the claim of its batch),
    so no other run gets them meanwhile. A run launched by hand may also update devices
    without an auto-updating job (PEM, inactive), as a forced update does; a scheduled run
    updates only devices still scheduled. Whatever is still held at the end was not
    rescheduled by an update (that clears the claim): it is given back, not due again before
    the retry interval.
    """
    engine = services.engine
    held = jobs.claim_for_run(
        engine, device_ids, claimed_by=claimant, now=clock.now(), lease=jobs.CLAIM_LEASE
    )
    report = RunReport(
        busy=[i for i in device_ids if i in held.busy],
        unscheduled=[i for i in device_ids if scheduled and i in held.unscheduled],
    )
    skipped = {*report.busy, *report.unscheduled}
    to_update = [i for i in device_ids if i not in skipped]
    try:
        report.results = await update_many(
            services, to_update, author=author, concurrency=concurrency
        )
    finally:
        report.released = jobs.release(
            engine, held.claimed, claimant, defer_until=clock.now() + jobs.DEFER_INTERVAL
        )
    return report
