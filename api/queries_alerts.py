"""Query fields of alerts: ``alerts``, ``notificationChannels``, ``alertPolicy``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.engine import Engine

from api.context import Info
from api.inputs import AlertFilter
from api.types import Node, PageInfo
from api.types.alerts import (
    Alert,
    AlertConnection,
    AlertEdge,
    AlertPolicy,
    NotificationChannel,
)
from tracking.core.errors import DstrackError
from tracking.core.ids import decode_pk, encode_id
from tracking.manage import alert_reads, alerts
from tracking.manage.access import Viewer
from tracking.manage.queries import MAX_PAGE_SIZE

DEFAULT_PAGE_SIZE = 20
NO_MATCH = -1


def _pk(global_id: strawberry.ID | None, type_name: str) -> int | None:
    if global_id is None:
        return None
    found = decode_pk(global_id, type_name)
    return NO_MATCH if found is None else found


def _page(first: int | None, after: str | None) -> tuple[int, int | None]:
    size = DEFAULT_PAGE_SIZE if first is None else first
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise GraphQLError(
            f"first must be between 0 and {MAX_PAGE_SIZE}.",
            extensions={"code": "INVALID_PAGE_SIZE"},
        )
    if after is None:
        return size, None
    cursor = decode_pk(after, "cursor")
    if cursor is None:
        raise GraphQLError(
            "after is not a cursor of this connection.", extensions={"code": "INVALID_CURSOR"}
        )
    return size, cursor


# type name -> (find the row the viewer may see, build the GraphQL object from it)
ALERT_NODES: dict[str, tuple[Callable[[Engine, Viewer, int], Any], Callable[[Any], Node]]] = {
    "Alert": (alert_reads.visible_alert, Alert.from_row),
    "NotificationChannel": (alert_reads.visible_channel, NotificationChannel.from_row),
}


@strawberry.type
class AlertQuery:
    @strawberry.field(description="Alerts of the organizations the caller may see, newest first.")
    async def alerts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: AlertFilter | None = None,
    ) -> AlertConnection:
        size, cursor = _page(first, after)
        filters = alert_reads.AlertQuery()
        if filter is not None:
            filters = alert_reads.AlertQuery(
                organization_id=_pk(filter.organization_id, "Organization"),
                device_id=_pk(filter.device_id, "Device"),
                kind=filter.kind.value if filter.kind else None,
                state=filter.state.value if filter.state else None,
            )
        rows, has_next, total = alert_reads.list_alerts(
            info.context.services.engine, info.context.viewer, filters, after=cursor, limit=size
        )
        edges = [
            AlertEdge(cursor=encode_id("cursor", r.id or 0), node=Alert.from_row(r)) for r in rows
        ]
        return AlertConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=total,
        )

    @strawberry.field(description="Channels of the organizations the caller may see.")
    async def notification_channels(self, info: Info) -> list[NotificationChannel]:
        rows = alert_reads.list_channels(info.context.services.engine, info.context.viewer)
        return [NotificationChannel.from_row(r) for r in rows]

    @strawberry.field(description="The effective policy: the organization's own, else the global.")
    async def alert_policy(
        self, info: Info, organization_id: strawberry.ID | None = None
    ) -> AlertPolicy:
        try:
            policy = alerts.effective_policy(
                info.context.services.engine,
                viewer=info.context.viewer,
                organization_id=_pk(organization_id, "Organization"),
            )
        except DstrackError as error:
            raise GraphQLError(error.message, extensions={"code": error.code.value}) from error
        return AlertPolicy.from_policy(policy)
