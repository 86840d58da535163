"""What people ask of the pipeline directly: a forced update of one or many devices, and the
service-wide Domain & SSL Tracking switch."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import col, select

from models import Device, UpdateJob
from models.db import reader, transaction
from tracking.core import clock
from tracking.core.errors import ErrorCode, ValidationError
from tracking.manage.access import Viewer
from tracking.manage.budget import spend_retrievals
from tracking.manage.device_rules import LOCKED_CATEGORIES, edit_refusals
from tracking.refresh.pipeline import AuditResult, update_many
from tracking.refresh.services import Services
from tracking.refresh.switch import store_tracking_enabled, tracking_enabled
from tracking.refresh.writes import sync_jobs

MAX_FORCED_UPDATES = 100
# As many look-ups in flight as a scheduled refresh run: a forced update of 100 devices is as
# fast as the batch path (the per-user budget bounds how many a user may ask for).
FORCED_UPDATE_CONCURRENCY = 16


async def force_update(
    services: Services, *, viewer: Viewer, device_ids: Sequence[int]
) -> list[AuditResult]:
    """ "Update SSL Certificate Details" / "Update Domain Details" for one or many devices.

    Each device gets its own result; an unknown or forbidden device is a NOT_FOUND result,
    not a failure of the whole request.
    """
    if len(device_ids) > MAX_FORCED_UPDATES:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            f"At most {MAX_FORCED_UPDATES} devices can be updated in one request.",
            field="ids",
        )
    with reader(services.engine) as session:
        refusals = edit_refusals(session, viewer, device_ids)
    refused = {i: error for i, error in refusals.items() if error is not None}
    allowed = [i for i, error in refusals.items() if error is None]
    spend_retrievals(services, viewer, len(allowed))  # what will reach the network
    done = {
        r.device_id: r
        for r in await update_many(
            services,
            allowed,
            author=viewer.name,
            concurrency=FORCED_UPDATE_CONCURRENCY,
            writes_off_loop=True,  # the API's other requests go on meanwhile
        )
    }
    return [
        done[i] if i in done else AuditResult(device_id=i, error=refused[i]) for i in device_ids
    ]


def set_tracking_enabled(services: Services, *, viewer: Viewer, enabled: bool) -> None:
    """Turn Domain & SSL Tracking on or off; every auto-updating job follows at once."""
    if not viewer.is_admin:
        raise ValidationError(
            ErrorCode.FORBIDDEN, "Only administrators may switch Domain & SSL Tracking."
        )
    with transaction(services.engine) as session:
        if tracking_enabled(session) == enabled:
            return
        store_tracking_enabled(session, enabled)
        session.flush()
        if not enabled:
            session.execute(sa.delete(UpdateJob))
            return
        candidates = session.exec(
            select(Device.id).where(col(Device.active), col(Device.category).in_(LOCKED_CATEGORIES))
        ).all()
        sync_jobs(session, [i for i in candidates if i is not None], now=clock.now())
