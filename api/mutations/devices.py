"""Mutations of devices: create, edit, activate, force an update, and the tracking switch."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from api.context import Info
from api.inputs import CreateDeviceInput, UpdateDeviceInput
from api.mutations.payloads import payload, pk, user_errors
from api.types import Device, DevicePayload, ForceUpdatePayload, TrackingSettings, UpdateResult
from models import Device as DeviceRow
from models import DeviceCategory as DeviceCategoryEnum
from tracking.core.errors import DstrackError
from tracking.manage import devices, edits, queries, updates
from tracking.refresh.pipeline import AuditResult, result_message


def _update_result(
    given_id: strawberry.ID, result: AuditResult, row: DeviceRow | None
) -> UpdateResult:
    return UpdateResult(
        device_id=given_id,
        device=Device.from_row(row) if row is not None else None,
        changed=result.changed,
        message=result_message(result),
        errors=user_errors(result.error),
    )


def _limit_error(error: DstrackError) -> GraphQLError:
    """A refusal of the whole request (a limit, a permission), not of one device."""
    return GraphQLError(error.message, extensions={"code": error.code.value})


@strawberry.type
class DeviceMutation:
    @strawberry.mutation
    async def create_device(self, info: Info, input: CreateDeviceInput) -> DevicePayload:
        new = devices.NewDevice(
            organization_id=pk(input.organization_id, "Organization"),
            category=DeviceCategoryEnum(input.category),
            contract_id=pk(input.contract_id, "Contract"),
            name=input.name,
            product_id=pk(input.product_id, "Product"),
            description=input.description,
            active=input.active is not False,
            ssl_source=input.ssl_source,
            domain=input.domain,
            create_ssl_certificate=input.create_ssl_certificate is not False,
        )
        return await payload(
            DevicePayload,
            "device",
            lambda: devices.create_device(
                info.context.services, viewer=info.context.viewer, new=new
            ),
            Device.from_row,
        )

    @strawberry.mutation(
        description='updateDetails: "Save & Check for SSL Certificate" / '
        '"Save & Update Domain Detail".'
    )
    async def update_device(
        self,
        info: Info,
        id: strawberry.ID,
        input: UpdateDeviceInput,
        update_details: bool | None = False,
    ) -> DevicePayload:
        changes = edits.DeviceChanges(
            name=input.name,
            product_id=pk(input.product_id, "Product"),
            contract_id=pk(input.contract_id, "Contract"),
            description=input.description,
            category=DeviceCategoryEnum(input.category) if input.category else None,
            ssl_source=input.ssl_source,
            domain=input.domain,
            expires_at=input.expires_at,
            registrar=input.registrar,
        )
        try:
            row, result = await edits.update_device(
                info.context.services,
                viewer=info.context.viewer,
                device_id=pk(id, "Device"),
                changes=changes,
                update_details=bool(update_details),
            )
        except DstrackError as error:
            return DevicePayload(device=None, errors=user_errors(error))
        errors = user_errors(result.error if result is not None else None)
        return DevicePayload(device=Device.from_row(row), errors=errors)

    @strawberry.mutation
    async def set_device_active(self, info: Info, id: strawberry.ID, active: bool) -> DevicePayload:
        return await payload(
            DevicePayload,
            "device",
            lambda: edits.set_device_active(
                info.context.services,
                viewer=info.context.viewer,
                device_id=pk(id, "Device"),
                active=active,
            ),
            Device.from_row,
        )

    @strawberry.mutation(
        description='"Update SSL Certificate Details" / "Update Domain Details", '
        "one or many devices."
    )
    async def force_update(self, info: Info, ids: list[strawberry.ID]) -> ForceUpdatePayload:
        try:
            results = await updates.force_update(
                info.context.services,
                viewer=info.context.viewer,
                device_ids=[pk(i, "Device") or 0 for i in ids],
            )
        except DstrackError as error:
            raise _limit_error(error) from error
        # Only devices the caller may see: a refused ID must not show the device behind it.
        rows = queries.visible_devices(
            info.context.services.engine,
            info.context.viewer,
            [r.device_id for r in results if r.device_id],
        )
        return ForceUpdatePayload(
            results=[
                _update_result(given_id, result, rows.get(result.device_id))
                for given_id, result in zip(ids, results, strict=True)
            ]
        )

    @strawberry.mutation
    async def set_tracking_enabled(self, info: Info, enabled: bool) -> TrackingSettings:
        try:
            updates.set_tracking_enabled(
                info.context.services, viewer=info.context.viewer, enabled=enabled
            )
        except DstrackError as error:
            raise _limit_error(error) from error
        return TrackingSettings(enabled=enabled)
