"""Every retrieval a user asks for counts against one budget: ``DSTRACK_RETRIEVALS_PER_10_MIN``.

A forced update, a device created or edited with a host or a domain, an import row: whatever
reaches the network on a user's behalf takes from the same token bucket (full at the start,
refilled evenly over ten minutes). The bucket is a row in the database, updated with a
compare-and-set, so the limit holds with several API workers.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from models.db import transaction
from models.tables import RETRIEVAL_BUDGETS as _BUDGETS
from tracking.core import clock
from tracking.core.errors import ErrorCode, ValidationError
from tracking.manage.access import Viewer
from tracking.refresh.services import Services

WINDOW = timedelta(minutes=10)
ATTEMPTS = 8  # compare-and-set rounds lost to concurrent takers before giving up


def spend_retrievals(services: Services, viewer: Viewer, count: int) -> None:
    """The user's retrievals, against the configured budget (before any network)."""
    take_retrievals(
        services.engine,
        user_id=viewer.user_id,
        count=count,
        limit=services.settings.retrievals_per_10_min,
    )


def take_retrievals(engine: Engine, *, user_id: int, count: int, limit: int) -> None:
    """Spend ``count`` retrievals of the user now, or refuse them all with RATE_LIMITED."""
    if count <= 0:
        return
    if count > limit:
        raise _refused(limit, None)
    for _ in range(ATTEMPTS):
        now = clock.now()
        with transaction(engine) as session:
            row = session.execute(sa.select(_BUDGETS).where(_BUDGETS.c.user_id == user_id)).first()
            available = _available(row, limit, now)
            if available < count:
                raise _refused(limit, _wait_seconds(count - available, limit))
            values = {"tokens": available - count, "refilled_at": now}
            if row is None:
                try:
                    with session.begin_nested():
                        session.execute(
                            sa.insert(_BUDGETS).values(user_id=user_id, version=0, **values)
                        )
                except sa.exc.IntegrityError:
                    continue  # another worker made the row first: read it again
                return
            taken = session.execute(
                sa.update(_BUDGETS)
                .where(_BUDGETS.c.user_id == user_id, _BUDGETS.c.version == row.version)
                .values(version=row.version + 1, **values)
                .returning(_BUDGETS.c.user_id)
            ).first()
            if taken is not None:
                return
    raise _refused(limit, 1)


def _available(row: sa.Row[Any] | None, limit: int, now: datetime) -> float:
    if row is None:
        return float(limit)
    refilled_at: datetime = row.refilled_at
    tokens: float = row.tokens
    refill = max(0.0, (now - refilled_at).total_seconds()) * limit / WINDOW.total_seconds()
    return min(float(limit), tokens + refill)


def _wait_seconds(missing: float, limit: int) -> int:
    return max(1, math.ceil(missing * WINDOW.total_seconds() / limit))


def _refused(limit: int, wait: int | None) -> ValidationError:
    minutes = int(WINDOW.total_seconds() // 60)
    message = f"Too many retrievals: at most {limit} per {minutes} minutes."
    if wait is not None:
        message += f" Try again in {wait} seconds."
    return ValidationError(ErrorCode.RATE_LIMITED, message)
