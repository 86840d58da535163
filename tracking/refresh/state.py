"""What the pipeline knows of a batch of devices before updating them, read as plain rows.

A query per table for the whole batch (no ORM objects: loading and diffing rows as objects
cost a third of a refresh); the Core tables are shared with the writer.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from models.tables import DEVICES, DOMAIN_DETAILS, SSL_DETAILS
from models.tables import UPDATE_JOBS as JOBS
from tracking.refresh.switch import tracking_enabled

# What an update reads of a device (the rest of its row is people's business).
_DEVICE_COLUMNS = (
    "id",
    "category",
    "active",
    "ssl_source_kind",
    "domain",
    "expires_at",
    "last_updated_at",
    "last_update_error",
    "consecutive_failures",
)

Row = sa.Row[Any]


@dataclass(frozen=True)
class Stored:
    """One device as the last update left it."""

    device: Row
    ssl: Row | None  # its ssl_details row
    domain: Row | None  # its domain_details row
    has_job: bool


@dataclass(frozen=True)
class BatchState:
    devices: dict[int, Stored]
    tracking_enabled: bool


def read_state(
    session: Session,
    device_ids: Collection[int],
    *,
    ssl_ids: Collection[int] = (),
    domain_ids: Collection[int] = (),
) -> BatchState:
    """The devices among ``device_ids`` that exist, with the details of ``ssl_ids`` and
    ``domain_ids`` (no query for a kind of details nobody asked for)."""
    ids = sorted(set(device_ids))
    devices = _by_id(session, DEVICES, "id", ids, [DEVICES.c[n] for n in _DEVICE_COLUMNS])
    ssl = _by_id(session, SSL_DETAILS, "device_id", sorted(set(ssl_ids)))
    domain = _by_id(session, DOMAIN_DETAILS, "device_id", sorted(set(domain_ids)))
    with_job = (
        set(session.execute(sa.select(JOBS.c.device_id).where(JOBS.c.device_id.in_(ids))).scalars())
        if ids
        else set()
    )
    stored = {
        device_id: Stored(row, ssl.get(device_id), domain.get(device_id), device_id in with_job)
        for device_id, row in devices.items()
    }
    return BatchState(stored, tracking_enabled(session) if ids else True)


def _by_id(
    session: Session, table: sa.Table, key: str, ids: list[int], columns: Any = None
) -> dict[int, Row]:
    if not ids:
        return {}
    query = sa.select(*(columns or table.c)).where(table.c[key].in_(ids))
    return {row._mapping[key]: row for row in session.execute(query)}
