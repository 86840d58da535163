"""Read-side queries with the viewer's visibility applied (organizations of viewable types)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from models import (
    ActivityNote,
    Contract,
    Device,
    Organization,
    Product,
    RawFile,
    SecurityLevel,
    User,
)
from models.db import reader
from models.tables import SSL_DETAILS as _SSL_DETAILS
from tracking.manage.access import Viewer

MAX_PAGE_SIZE = 100
MAX_FORECAST_WEEKS = 104


class DeviceOrder(StrEnum):
    """How a list of devices is sorted."""

    ID = "ID"  # creation order
    EXPIRES_AT = "EXPIRES_AT"  # soonest expiry first, devices without an expiry last; then id


@dataclass(frozen=True)
class ExpiryPosition:
    """A place in the list by expiry: the (expires_at, id) of the last device of a page."""

    expires_at: datetime | None
    id: int


@dataclass(frozen=True)
class DeviceQuery:
    organization_id: int | None = None
    contract_id: int | None = None
    category: str | None = None
    active: bool | None = None
    expiring_before: datetime | None = None


def visible_to(query: Any, viewer: Viewer) -> Any:
    """``query`` (joined with organizations) narrowed to the organizations the viewer may see:
    the visibility rule of every read."""
    types = viewer.visible_types
    if types is None:
        return query
    return query.where(col(Organization.type).in_(sorted(types)))


def _device_filters(query: Any, viewer: Viewer, filters: DeviceQuery) -> Any:
    query = visible_to(
        query.join(Organization, col(Organization.id) == col(Device.organization_id)), viewer
    )
    if filters.organization_id is not None:
        query = query.where(Device.organization_id == filters.organization_id)
    if filters.contract_id is not None:
        query = query.where(Device.contract_id == filters.contract_id)
    if filters.category is not None:
        query = query.where(Device.category == filters.category)
    if filters.active is not None:
        query = query.where(Device.active == filters.active)
    if filters.expiring_before is not None:
        query = query.where(col(Device.expires_at) < filters.expiring_before)
    return query


@dataclass(frozen=True, slots=True)
class OrganizationName:
    """What a list of devices shows of their organizations."""

    id: int
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class ProductName:
    """What a list of devices shows of their products."""

    id: int
    name: str
    is_system: bool


@dataclass(frozen=True)
class DeviceList:
    devices: list[Device]
    has_next: bool
    total: int
    organizations: dict[int, OrganizationName]
    products: dict[int, ProductName]
    ssl_details: dict[int, sa.Row[Any]] | None = None
    """Plain rows of ``ssl_details`` by device id, when asked for; None when not."""


def list_devices(
    engine: Engine,
    viewer: Viewer,
    filters: DeviceQuery,
    *,
    after: int | ExpiryPosition | None,
    limit: int,
    ssl_details: bool = False,
    order: DeviceOrder = DeviceOrder.ID,
) -> DeviceList:
    """A page of devices in ``order`` (keyset: ``after`` is the id of the last device of the
    previous page, or its ``ExpiryPosition`` when by expiry), whether more follow, the total
    count, and the organizations and products of the page's devices; with ``ssl_details``,
    their SSL details too (as plain rows: no ORM objects).

    One query: the page joins the organizations anyway (for visibility) and carries the count
    as an uncorrelated subquery, which the database evaluates once. Only an empty page after a
    cursor needs a second query for the count.
    """
    count = _device_filters(sa.select(sa.func.count(col(Device.id))), viewer, filters)
    page = sa.select(
        Device,
        col(Organization.name),
        col(Organization.type),
        col(Product.name),
        col(Product.is_system),
        count.correlate(None).scalar_subquery(),
    ).join(Product, col(Product.id) == col(Device.product_id))
    if ssl_details:
        page = page.add_columns(sa.orm.Bundle("ssl_details", *_SSL_DETAILS.c)).outerjoin(
            _SSL_DETAILS, _SSL_DETAILS.c.device_id == col(Device.id)
        )
    page = _device_filters(page, viewer, filters)
    if after is not None:
        page = page.where(_after(after, order))
    page = page.order_by(*_ORDER_BY[order]).limit(limit + 1)
    with reader(engine) as session:
        rows = session.execute(page).all()
        if rows:
            total = rows[0][5]
        elif after is None:
            total = 0  # the page has the count's conditions and no cursor
        else:
            total = session.execute(count).scalar_one()
    return _listing(rows, limit=limit, total=int(total), ssl_details=ssl_details)


def _listing(rows: Sequence[Any], *, limit: int, total: int, ssl_details: bool) -> DeviceList:
    """The page's devices with their organizations, products and (asked for) SSL details."""
    listing = DeviceList([], len(rows) > limit, total, {}, {}, {} if ssl_details else None)
    for row in rows[:limit]:
        device, organization_name, organization_type, product_name, is_system = row[:5]
        listing.devices.append(device)
        if device.organization_id not in listing.organizations:
            listing.organizations[device.organization_id] = OrganizationName(
                device.organization_id, organization_name, organization_type
            )
        if device.product_id not in listing.products:
            listing.products[device.product_id] = ProductName(
                device.product_id, product_name, is_system
            )
        if listing.ssl_details is not None and row[6].device_id is not None:
            listing.ssl_details[row[6].device_id] = row[6]
    return listing


_ORDER_BY = {
    DeviceOrder.ID: (col(Device.id),),
    DeviceOrder.EXPIRES_AT: (col(Device.expires_at).asc().nulls_last(), col(Device.id)),
}


def _after(position: int | ExpiryPosition, order: DeviceOrder) -> Any:
    """The condition "comes after ``position`` in ``order``"."""
    if order is DeviceOrder.ID:
        if not isinstance(position, int):
            raise TypeError("a list by id continues after a device id")
        return col(Device.id) > position
    if not isinstance(position, ExpiryPosition):
        raise TypeError("a list by expiry continues after an ExpiryPosition")
    expires_at = col(Device.expires_at)
    later_id = col(Device.id) > position.id
    if position.expires_at is None:  # among the devices without an expiry, at the end
        return sa.and_(expires_at.is_(None), later_id)
    return sa.or_(
        expires_at > position.expires_at,
        sa.and_(expires_at == position.expires_at, later_id),
        expires_at.is_(None),
    )


@dataclass(frozen=True)
class ExpiryWeek:
    week_start: datetime
    count: int


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the week ``moment`` (timezone-aware) falls in."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def expiry_forecast(
    engine: Engine,
    viewer: Viewer,
    *,
    now: datetime,
    weeks: int,
    organization_id: int | None = None,
) -> list[ExpiryWeek]:
    """How many active devices the viewer may see expire in each of ``weeks`` weeks (Monday
    00:00 UTC to Monday), the first being the week of ``now``; empty weeks count 0.

    One grouped query: each device's week is a CASE over the week boundaries (portable, and
    compared as the column type binds datetimes); the range condition can use the expiry index.
    """
    if not 1 <= weeks <= MAX_FORECAST_WEEKS:
        raise ValueError(f"weeks must be between 1 and {MAX_FORECAST_WEEKS}")
    starts = [week_start(now) + timedelta(weeks=i) for i in range(weeks + 1)]
    expires_at = col(Device.expires_at)
    week = sa.case(*((expires_at < end, i) for i, end in enumerate(starts[1:]))).label("week")
    devices = _device_filters(
        sa.select(week).select_from(Device),
        viewer,
        DeviceQuery(organization_id=organization_id, active=True),
    ).where(expires_at >= starts[0], expires_at < starts[-1])
    weeks_of = devices.subquery()
    query = sa.select(weeks_of.c.week, sa.func.count()).group_by(weeks_of.c.week)
    with reader(engine) as session:
        counts = {int(i): int(n) for i, n in session.execute(query).all()}
    return [ExpiryWeek(start, counts.get(i, 0)) for i, start in enumerate(starts[:-1])]


def list_organizations(
    engine: Engine, viewer: Viewer, *, after: int | None, limit: int
) -> tuple[list[Organization], bool]:
    query = visible_to(select(Organization), viewer)
    if after is not None:
        query = query.where(col(Organization.id) > after)
    with reader(engine) as session:
        rows = list(session.exec(query.order_by(col(Organization.id)).limit(limit + 1)).all())
    return rows[:limit], len(rows) > limit


def _first(engine: Engine, query: Any) -> Any:
    with reader(engine) as session:
        return session.exec(query).first()


def _in_organization(model: Any, organization_id: Any, viewer: Viewer) -> Any:
    """Rows of ``model`` whose organization (via ``organization_id``) the viewer may see."""
    return visible_to(
        select(model).join(Organization, col(Organization.id) == col(organization_id)), viewer
    )


def _of_device(model: Any, viewer: Viewer) -> Any:
    """Rows of ``model`` (with a ``device_id``) belonging to devices the viewer may see."""
    return visible_to(
        select(model)
        .join(Device, col(Device.id) == col(model.device_id))
        .join(Organization, col(Organization.id) == col(Device.organization_id)),
        viewer,
    )


def visible_device(engine: Engine, viewer: Viewer, pk: int) -> Device | None:
    result: Device | None = _first(
        engine, _in_organization(Device, Device.organization_id, viewer).where(Device.id == pk)
    )
    return result


def visible_devices(engine: Engine, viewer: Viewer, pks: Iterable[int]) -> dict[int, Device]:
    """The devices among ``pks`` the viewer may see, by primary key (others are left out)."""
    wanted = sorted(set(pks))
    if not wanted:
        return {}
    query = _in_organization(Device, Device.organization_id, viewer)
    with reader(engine) as session:
        rows = session.exec(query.where(col(Device.id).in_(wanted))).all()
    return {row.id: row for row in rows if row.id is not None}


def visible_organization(engine: Engine, viewer: Viewer, pk: int) -> Organization | None:
    with reader(engine) as session:
        organization = session.get(Organization, pk)
    if organization is None or not viewer.may_view(organization.type):
        return None
    return organization


def visible_contract(engine: Engine, viewer: Viewer, pk: int) -> Contract | None:
    result: Contract | None = _first(
        engine,
        _in_organization(Contract, Contract.organization_id, viewer).where(Contract.id == pk),
    )
    return result


def visible_raw_file(engine: Engine, viewer: Viewer, pk: int) -> RawFile | None:
    result: RawFile | None = _first(engine, _of_device(RawFile, viewer).where(RawFile.id == pk))
    return result


def visible_activity_note(engine: Engine, viewer: Viewer, pk: int) -> ActivityNote | None:
    result: ActivityNote | None = _first(
        engine, _of_device(ActivityNote, viewer).where(ActivityNote.id == pk)
    )
    return result


def visible_user(engine: Engine, viewer: Viewer, pk: int) -> tuple[User, SecurityLevel] | None:
    """A user and their security level: administrators see everyone, others themselves."""
    if not (viewer.is_admin or pk == viewer.user_id):
        return None
    with reader(engine) as session:
        user = session.get(User, pk)
        level = session.get(SecurityLevel, user.security_level_id) if user else None
    return (user, level) if user is not None and level is not None else None


def visible_security_level(engine: Engine, viewer: Viewer, pk: int) -> SecurityLevel | None:
    """Administrators see every security level, others their own."""
    with reader(engine) as session:
        level = session.get(SecurityLevel, pk)
        if level is None or viewer.is_admin:
            return level
        own = session.get(User, viewer.user_id)
    return level if own is not None and own.security_level_id == pk else None


def get_product(engine: Engine, pk: int) -> Product | None:
    with reader(engine) as session:
        return session.get(Product, pk)
