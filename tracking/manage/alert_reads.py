"""Reading alerts and channels with the viewer's visibility: the alerts and channels of the
organizations their security level may see (global channels: administrators)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from models import Alert, AlertDelivery, Device, NotificationChannel, Organization
from models.db import reader
from tracking.manage.access import Viewer
from tracking.manage.queries import visible_to


@dataclass(frozen=True)
class AlertQuery:
    organization_id: int | None = None
    device_id: int | None = None
    kind: str | None = None
    state: str | None = None


def _alerts(query: Any, viewer: Viewer, filters: AlertQuery) -> Any:
    query = query.join(Device, col(Device.id) == col(Alert.device_id)).join(
        Organization, col(Organization.id) == col(Device.organization_id)
    )
    query = visible_to(query, viewer)
    if filters.organization_id is not None:
        query = query.where(Device.organization_id == filters.organization_id)
    if filters.device_id is not None:
        query = query.where(Alert.device_id == filters.device_id)
    if filters.kind is not None:
        query = query.where(Alert.kind == filters.kind)
    if filters.state is not None:
        query = query.where(Alert.state == filters.state)
    return query


def list_alerts(
    engine: Engine, viewer: Viewer, filters: AlertQuery, *, after: int | None, limit: int
) -> tuple[list[Alert], bool, int]:
    """A page of alerts, newest first (keyset on the id), whether more follow, the total."""
    page = _alerts(select(Alert), viewer, filters)
    if after is not None:
        page = page.where(col(Alert.id) < after)
    page = page.order_by(col(Alert.id).desc()).limit(limit + 1)
    count = _alerts(sa.select(sa.func.count(col(Alert.id))), viewer, filters)
    with reader(engine) as session:
        rows = list(session.exec(page).all())
        total = session.execute(count).scalar_one()
    return rows[:limit], len(rows) > limit, int(total)


def visible_alert(engine: Engine, viewer: Viewer, pk: int) -> Alert | None:
    query = _alerts(select(Alert), viewer, AlertQuery()).where(Alert.id == pk)
    with reader(engine) as session:
        result: Alert | None = session.exec(query).first()
    return result


def _channels(viewer: Viewer) -> Any:
    query = select(NotificationChannel).outerjoin(
        Organization, col(Organization.id) == col(NotificationChannel.organization_id)
    )
    if viewer.is_admin:
        return query
    types = sorted(viewer.visible_types or ())
    return query.where(col(Organization.type).in_(types))


def list_channels(engine: Engine, viewer: Viewer) -> list[NotificationChannel]:
    """Channels not deleted: of the organizations the viewer sees; global ones for admins."""
    query = _channels(viewer).where(col(NotificationChannel.deleted_at).is_(None))
    with reader(engine) as session:
        return list(session.exec(query.order_by(col(NotificationChannel.id))).all())


def visible_channel(engine: Engine, viewer: Viewer, pk: int) -> NotificationChannel | None:
    query = _channels(viewer).where(NotificationChannel.id == pk)
    with reader(engine) as session:
        result: NotificationChannel | None = session.exec(query).first()
    return result


# --- batched reads for the API's DataLoaders ---------------------------------------------------


def newest_alerts(engine: Engine, keys: list[tuple[int, int]]) -> list[list[Alert]]:
    """For each (device id, n): the device's n newest alerts, in one windowed query."""
    limit = max(n for _, n in keys)
    ranked = (
        select(
            Alert,
            sa.func.row_number()
            .over(partition_by=col(Alert.device_id), order_by=col(Alert.id).desc())
            .label("rank"),
        )
        .where(col(Alert.device_id).in_({d for d, _ in keys}))
        .subquery()
    )
    alerts = sa.orm.aliased(Alert, ranked)
    query = select(alerts).where(ranked.c.rank <= limit).order_by(ranked.c.rank)
    with reader(engine) as session:
        rows = session.exec(query).all()
    groups: dict[int, list[Alert]] = defaultdict(list)
    for row in rows:
        groups[row.device_id].append(row)
    return [groups.get(device_id, [])[:n] for device_id, n in keys]


def deliveries_of(engine: Engine, alert_ids: Iterable[int]) -> dict[int, list[AlertDelivery]]:
    query = (
        select(AlertDelivery)
        .where(col(AlertDelivery.alert_id).in_(sorted(set(alert_ids))))
        .order_by(col(AlertDelivery.id))
    )
    with reader(engine) as session:
        rows = session.exec(query).all()
    groups: dict[int, list[AlertDelivery]] = defaultdict(list)
    for row in rows:
        groups[row.alert_id].append(row)
    return groups


def channels_by_id(engine: Engine, ids: Iterable[int]) -> dict[int, NotificationChannel]:
    query = select(NotificationChannel).where(col(NotificationChannel.id).in_(sorted(set(ids))))
    with reader(engine) as session:
        return {c.id: c for c in session.exec(query).all() if c.id is not None}
