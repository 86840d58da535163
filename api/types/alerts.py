"""GraphQL types of alerts: channels (targets masked), policies, alerts and their deliveries."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.context import Info
from api.types.common import Node, PageInfo, UserError
from api.types.devices import Device
from api.types.inventory import Organization
from models import Alert as AlertRow
from models import AlertDelivery as AlertDeliveryRow
from models import NotificationChannel as ChannelRow
from tracking.core.alert_rules import AlertKind as AlertKindEnum
from tracking.core.alert_rules import AlertSeverity as AlertSeverityEnum
from tracking.core.alert_rules import AlertState as AlertStateEnum
from tracking.core.alert_rules import ChannelKind
from tracking.core.alert_rules import DeliveryState as DeliveryStateEnum
from tracking.core.ids import encode_id
from tracking.core.notices import mask_url
from tracking.manage.alerts import EffectivePolicy
from tracking.probes.notify import HOSTED_SCHEMES

NotificationChannelKind = strawberry.enum(ChannelKind, name="NotificationChannelKind")
AlertKind = strawberry.enum(AlertKindEnum)
AlertSeverity = strawberry.enum(AlertSeverityEnum)
AlertState = strawberry.enum(AlertStateEnum)
DeliveryState = strawberry.enum(DeliveryStateEnum)


def masked_target(row: ChannelRow) -> str:
    """Recipients as they are; URLs with every secret replaced by ``****``."""
    if row.kind == ChannelKind.EMAIL:
        return row.target.replace(",", ", ")
    if row.kind == ChannelKind.APPRISE:
        scheme = row.target.split("://", 1)[0].lower()
        return mask_url(row.target, keep_host=scheme in HOSTED_SCHEMES)
    return mask_url(row.target)


@strawberry.type
class NotificationChannel(Node):
    name: str
    kind: NotificationChannelKind  # type: ignore[valid-type]
    enabled: bool
    target: str = strawberry.field(
        description='Recipients, or the URL with every secret masked ("****").'
    )
    organization_pk: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: ChannelRow) -> NotificationChannel:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("NotificationChannel", row.id)),
            name=row.name,
            kind=ChannelKind(row.kind),
            enabled=row.enabled and row.deleted_at is None,
            target=masked_target(row),
            organization_pk=row.organization_id,
        )

    @strawberry.field(description="Null: a global channel (administrators only).")
    async def organization(self, info: Info) -> Organization | None:
        if self.organization_pk is None:
            return None
        row = await info.context.loaders.organization.load(self.organization_pk)
        return Organization.from_row(row)


@strawberry.type
class AlertPolicy:
    organization: Organization | None = strawberry.field(
        description="Null: the global default every organization without its own inherits."
    )
    expiry_thresholds_days: list[int]
    notify_on_change: bool
    failures_before_alert: int
    channels: list[NotificationChannel]

    @classmethod
    def from_policy(cls, policy: EffectivePolicy) -> AlertPolicy:
        return cls(
            organization=Organization.from_row(policy.organization)
            if policy.organization
            else None,
            expiry_thresholds_days=list(policy.thresholds_days),
            notify_on_change=policy.notify_on_change,
            failures_before_alert=policy.failures_before_alert,
            channels=[NotificationChannel.from_row(c) for c in policy.channels],
        )


@strawberry.type
class AlertDelivery:
    state: DeliveryState  # type: ignore[valid-type]
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    channel_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: AlertDeliveryRow) -> AlertDelivery:
        return cls(
            state=DeliveryStateEnum(row.state),
            attempts=row.attempts,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
            channel_pk=row.channel_id,
        )

    @strawberry.field
    async def channel(self, info: Info) -> NotificationChannel:
        row = await info.context.loaders.channel.load(self.channel_pk)
        return NotificationChannel.from_row(row)


@strawberry.type
class Alert(Node):
    kind: AlertKind  # type: ignore[valid-type]
    severity: AlertSeverity  # type: ignore[valid-type]
    state: AlertState  # type: ignore[valid-type]
    message: str
    created_at: datetime
    threshold_days: int | None = strawberry.field(description="EXPIRING only.")
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    device_pk: strawberry.Private[int]
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: AlertRow) -> Alert:
        assert row.id is not None
        kind = AlertKindEnum(row.kind)
        return cls(
            id=strawberry.ID(encode_id("Alert", row.id)),
            kind=kind,
            severity=AlertSeverityEnum(row.severity),
            state=AlertStateEnum(row.state),
            message=row.message,
            created_at=row.created_at,
            threshold_days=row.threshold_days if kind is AlertKindEnum.EXPIRING else None,
            acknowledged_at=row.acknowledged_at,
            acknowledged_by=row.acknowledged_by,
            resolved_at=row.resolved_at,
            device_pk=row.device_id,
            pk=row.id,
        )

    @strawberry.field
    async def device(self, info: Info) -> Device:
        row = await info.context.loaders.device.load(self.device_pk)
        return Device.from_row(row)

    @strawberry.field
    async def deliveries(self, info: Info) -> list[AlertDelivery]:
        rows = await info.context.loaders.alert_deliveries.load(self.pk)
        return [AlertDelivery.from_row(r) for r in rows]


@strawberry.type
class AlertEdge:
    cursor: str
    node: Alert


@strawberry.type
class AlertConnection:
    edges: list[AlertEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class NotificationChannelPayload:
    channel: NotificationChannel | None
    secret: str | None = strawberry.field(
        default=None, description="The webhook signing secret, shown once, at creation."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AlertPolicyPayload:
    policy: AlertPolicy | None
    errors: list[UserError]


@strawberry.type
class AlertPayload:
    alert: Alert | None
    errors: list[UserError]
