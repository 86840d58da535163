"""Query resolvers: decode IDs, call ``tracking.manage.queries``, wrap rows in types."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.engine import Engine
from strawberry.types.nodes import SelectedField, Selection

from api.context import Info
from api.expiry import DeviceOrder, ExpiryWeek, check_weeks, expiry_cursor, expiry_position
from api.inputs import DeviceFilter
from api.queries_alerts import ALERT_NODES, AlertQuery
from api.types import (
    ActivityNote,
    Contract,
    Device,
    DeviceConnection,
    DeviceEdge,
    DevicePage,
    Node,
    Organization,
    OrganizationConnection,
    OrganizationEdge,
    PageInfo,
    Product,
    RawFile,
    SecurityLevel,
    TrackingSettings,
    User,
)
from models import DeviceCategory
from models import Product as ProductRow
from models.db import reader
from tracking.core import clock
from tracking.core.ids import decode_id, decode_pk, encode_id
from tracking.manage import inventory, queries
from tracking.manage.access import Viewer
from tracking.refresh.switch import tracking_enabled

DEFAULT_PAGE_SIZE = 20
NO_MATCH = -1  # a primary key no row has: an unknown ID filters everything out


def _page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 0 <= first <= queries.MAX_PAGE_SIZE:
        raise GraphQLError(
            f"first must be between 0 and {queries.MAX_PAGE_SIZE}.",
            extensions={"code": "INVALID_PAGE_SIZE"},
        )
    return first


def _after(after: str | None) -> int | None:
    if after is None:
        return None
    pk = decode_pk(after, "cursor")
    if pk is None:
        raise GraphQLError(
            "after is not a cursor of this connection.", extensions={"code": "INVALID_CURSOR"}
        )
    return pk


def _cursor(pk: int | None) -> str:
    assert pk is not None
    return encode_id("cursor", pk)


def _selects(fields: Iterable[Selection], path: Sequence[str]) -> bool:
    """Whether the selections of ``fields`` reach the field ``path`` (GraphQL names), through
    fragments too; directives (@skip, @include) are not looked at, so this may say yes."""
    for field in fields:
        for selection in field.selections:
            if isinstance(selection, SelectedField):
                if selection.name == path[0] and (
                    len(path) == 1 or _selects([selection], path[1:])
                ):
                    return True
            elif _selects([selection], path):
                return True
    return False


def _filter_pk(global_id: strawberry.ID | None, type_name: str) -> int | None:
    if global_id is None:
        return None
    pk = decode_pk(global_id, type_name)
    return NO_MATCH if pk is None else pk


def user_of(info: Info) -> User:
    viewer = info.context.viewer
    found = queries.visible_user(info.context.services.engine, viewer, viewer.user_id)
    assert found is not None
    return User.from_rows(*found)


def _product(engine: Engine, viewer: Viewer, pk: int) -> ProductRow | None:
    return queries.get_product(engine, pk)  # every user sees every product


# type name -> (find the row the viewer may see, build the GraphQL object from it)
_NODES: dict[str, tuple[Callable[[Engine, Viewer, int], Any], Callable[[Any], Node]]] = {
    "Device": (queries.visible_device, Device.from_row),
    "Organization": (queries.visible_organization, Organization.from_row),
    "Contract": (queries.visible_contract, Contract.from_row),
    "Product": (_product, Product.from_row),
    "RawFile": (queries.visible_raw_file, RawFile.from_row),
    "ActivityNote": (queries.visible_activity_note, ActivityNote.from_row),
    "SecurityLevel": (queries.visible_security_level, SecurityLevel.from_row),
    "User": (queries.visible_user, lambda found: User.from_rows(*found)),
    **ALERT_NODES,
}


@strawberry.type
class Query(AlertQuery):
    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        decoded = decode_id(id)
        if decoded is None or decoded[0] not in _NODES:
            return None
        type_name, pk = decoded
        find, wrap = _NODES[type_name]
        row = find(info.context.services.engine, info.context.viewer, pk)
        return wrap(row) if row is not None else None

    @strawberry.field
    async def device(self, info: Info, id: strawberry.ID) -> Device | None:
        pk = decode_pk(id, "Device")
        if pk is None:
            return None
        row = queries.visible_device(info.context.services.engine, info.context.viewer, pk)
        return Device.from_row(row) if row else None

    @strawberry.field(description="A Relay connection of the devices the caller may see.")
    async def devices(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: DeviceFilter | None = None,
        order_by: DeviceOrder | None = queries.DeviceOrder.ID,  # type: ignore[valid-type]
    ) -> DeviceConnection:
        filters = queries.DeviceQuery()
        if filter is not None:
            filters = queries.DeviceQuery(
                organization_id=_filter_pk(filter.organization_id, "Organization"),
                contract_id=_filter_pk(filter.contract_id, "Contract"),
                category=DeviceCategory(filter.category).value if filter.category else None,
                active=filter.active,
                expiring_before=filter.expiring_before,
            )
        order = queries.DeviceOrder(order_by or queries.DeviceOrder.ID)
        by_expiry = order is queries.DeviceOrder.EXPIRES_AT
        position = expiry_position(after) if by_expiry and after is not None else _after(after)
        listing = queries.list_devices(
            info.context.services.engine,
            info.context.viewer,
            filters,
            after=position,
            limit=_page_size(first),
            ssl_details=_selects(info.selected_fields, ("edges", "node", "sslDetails")),
            order=order,
        )
        info.context.loaders.prime_devices(listing.devices)
        page = DevicePage(listing)
        cursor_of = expiry_cursor if by_expiry else lambda row: _cursor(row.id)
        edges = [
            DeviceEdge(cursor=cursor_of(r), node=Device.from_row(r, page)) for r in listing.devices
        ]
        return DeviceConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=listing.has_next,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=listing.total,
        )

    @strawberry.field(
        description="How many active devices the caller may see expire in each of the next "
        "`weeks` weeks (1 to 104; weeks start on Monday 00:00 UTC, the first is the current "
        "week), optionally of one organization."
    )
    async def expiry_forecast(
        self, info: Info, weeks: int | None = 26, organization_id: strawberry.ID | None = None
    ) -> list[ExpiryWeek]:
        rows = queries.expiry_forecast(
            info.context.services.engine,
            info.context.viewer,
            now=clock.now(),
            weeks=check_weeks(26 if weeks is None else weeks),
            organization_id=_filter_pk(organization_id, "Organization"),
        )
        return [ExpiryWeek(week_start=row.week_start, count=row.count) for row in rows]

    @strawberry.field
    async def organizations(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> OrganizationConnection:
        rows, has_next = queries.list_organizations(
            info.context.services.engine,
            info.context.viewer,
            after=_after(after),
            limit=_page_size(first),
        )
        edges = [
            OrganizationEdge(cursor=_cursor(r.id), node=Organization.from_row(r)) for r in rows
        ]
        return OrganizationConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field
    async def products(self, info: Info) -> list[Product]:
        return [Product.from_row(r) for r in inventory.list_products(info.context.services.engine)]

    @strawberry.field
    async def tracking_settings(self, info: Info) -> TrackingSettings:
        with reader(info.context.services.engine) as session:
            return TrackingSettings(enabled=tracking_enabled(session))

    @strawberry.field
    async def me(self, info: Info) -> User:
        return user_of(info)
