"""Mutations of alerts: notification channels, alert policies, acknowledging, muting."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.inputs import CreateNotificationChannelInput, SetAlertPolicyInput
from api.mutations.payloads import payload, pk, user_errors
from api.types import Device, DevicePayload
from api.types.alerts import (
    Alert,
    AlertPayload,
    AlertPolicy,
    AlertPolicyPayload,
    NotificationChannel,
    NotificationChannelPayload,
)
from models import NotificationChannel as ChannelRow
from tracking.core.alert_rules import ChannelKind
from tracking.core.errors import DstrackError
from tracking.manage import alerts


def _ids(values: list[strawberry.ID] | None, type_name: str) -> list[int] | None:
    return None if values is None else [pk(v, type_name) or 0 for v in values]


@strawberry.type
class AlertMutation:
    @strawberry.mutation(description="The webhook signing secret is in `secret`, this once.")
    async def create_notification_channel(
        self, info: Info, input: CreateNotificationChannelInput
    ) -> NotificationChannelPayload:
        new = alerts.NewChannel(
            name=input.name,
            kind=ChannelKind(input.kind),
            organization_id=pk(input.organization_id, "Organization"),
            email_to=input.email_to,
            url=input.url,
            secret=input.secret,
        )
        try:
            row, secret = await alerts.create_channel(
                info.context.services, viewer=info.context.viewer, new=new
            )
        except DstrackError as error:
            return NotificationChannelPayload(channel=None, errors=user_errors(error))
        return NotificationChannelPayload(
            channel=NotificationChannel.from_row(row), secret=secret, errors=[]
        )

    @strawberry.mutation
    async def delete_notification_channel(
        self, info: Info, id: strawberry.ID
    ) -> NotificationChannelPayload:
        return await payload(
            NotificationChannelPayload,
            "channel",
            lambda: alerts.delete_channel(
                info.context.services.engine,
                viewer=info.context.viewer,
                channel_id=pk(id, "NotificationChannel"),
            ),
            NotificationChannel.from_row,
        )

    @strawberry.mutation(description="Sends a test message now; a failure is a UserError.")
    async def test_notification_channel(
        self, info: Info, id: strawberry.ID
    ) -> NotificationChannelPayload:
        async def call() -> ChannelRow:
            return await alerts.test_channel(
                info.context.services,
                viewer=info.context.viewer,
                channel_id=pk(id, "NotificationChannel"),
            )

        return await payload(
            NotificationChannelPayload, "channel", call, NotificationChannel.from_row
        )

    @strawberry.mutation
    async def set_alert_policy(self, info: Info, input: SetAlertPolicyInput) -> AlertPolicyPayload:
        changes = alerts.PolicyChanges(
            organization_id=pk(input.organization_id, "Organization"),
            thresholds_days=input.expiry_thresholds_days,
            notify_on_change=input.notify_on_change,
            failures_before_alert=input.failures_before_alert,
            channel_ids=_ids(input.channel_ids, "NotificationChannel"),
        )
        return await payload(
            AlertPolicyPayload,
            "policy",
            lambda: alerts.set_policy(
                info.context.services.engine, viewer=info.context.viewer, changes=changes
            ),
            AlertPolicy.from_policy,
        )

    @strawberry.mutation
    async def acknowledge_alert(self, info: Info, id: strawberry.ID) -> AlertPayload:
        return await payload(
            AlertPayload,
            "alert",
            lambda: alerts.acknowledge(
                info.context.services.engine, viewer=info.context.viewer, alert_id=pk(id, "Alert")
            ),
            Alert.from_row,
        )

    @strawberry.mutation
    async def set_device_alerts_muted(
        self, info: Info, id: strawberry.ID, muted: bool
    ) -> DevicePayload:
        return await payload(
            DevicePayload,
            "device",
            lambda: alerts.set_alerts_muted(
                info.context.services.engine,
                viewer=info.context.viewer,
                device_id=pk(id, "Device"),
                muted=muted,
            ),
            Device.from_row,
        )
