"""Mutation resolvers: decode IDs, call the use case, turn ``DstrackError`` into ``errors``."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from api.context import Info
from api.imports import import_devices_field
from api.inputs import (
    CreateContractInput,
    CreateDeviceInput,
    CreateOrganizationInput,
    CreateProductInput,
    CreateSecurityLevelInput,
    CreateUserInput,
    UpdateDeviceInput,
)
from api.types import (
    Contract,
    ContractPayload,
    CreateUserPayload,
    Device,
    DeviceCategory,
    DevicePayload,
    ForceUpdatePayload,
    Organization,
    OrganizationPayload,
    Product,
    ProductPayload,
    SecurityLevel,
    SecurityLevelPayload,
    TrackingSettings,
    UpdateResult,
    User,
    UserError,
)
from models import Device as DeviceRow
from models import DeviceCategory as DeviceCategoryEnum
from models import OrganizationType
from tracking.core.errors import DstrackError
from tracking.core.ids import decode_pk, encode_id
from tracking.manage import access, devices, inventory, queries
from tracking.refresh.pipeline import AuditResult, result_message


def _pk(global_id: strawberry.ID | None, type_name: str) -> int | None:
    """The primary key of an input ID; an unknown or foreign ID becomes 0, found by nothing."""
    if global_id is None:
        return None
    return decode_pk(global_id, type_name) or 0


def _errors(error: DstrackError) -> list[UserError]:
    return [UserError.from_error(error)]


def _update_result(
    given_id: strawberry.ID, result: AuditResult, row: DeviceRow | None
) -> UpdateResult:
    return UpdateResult(
        device_id=given_id,
        device=Device.from_row(row) if row is not None else None,
        changed=result.changed,
        message=result_message(result),
        errors=_errors(result.error) if result.error else [],
    )


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_organization(
        self, info: Info, input: CreateOrganizationInput
    ) -> OrganizationPayload:
        try:
            row = inventory.create_organization(
                info.context.services.engine,
                viewer=info.context.viewer,
                name=input.name,
                type=OrganizationType(input.type),
            )
        except DstrackError as error:
            return OrganizationPayload(organization=None, errors=_errors(error))
        return OrganizationPayload(organization=Organization.from_row(row), errors=[])

    @strawberry.mutation
    async def create_contract(self, info: Info, input: CreateContractInput) -> ContractPayload:
        try:
            row = inventory.create_contract(
                info.context.services.engine,
                viewer=info.context.viewer,
                organization_id=_pk(input.organization_id, "Organization"),
                name=input.name,
            )
        except DstrackError as error:
            return ContractPayload(contract=None, errors=_errors(error))
        return ContractPayload(contract=Contract.from_row(row), errors=[])

    @strawberry.mutation
    async def create_product(self, info: Info, input: CreateProductInput) -> ProductPayload:
        try:
            row = inventory.create_product(
                info.context.services.engine, viewer=info.context.viewer, name=input.name
            )
        except DstrackError as error:
            return ProductPayload(product=None, errors=_errors(error))
        return ProductPayload(product=Product.from_row(row), errors=[])

    @strawberry.mutation
    async def set_default_product(
        self,
        info: Info,
        category: DeviceCategory,  # type: ignore[valid-type]
        product_id: strawberry.ID,
    ) -> ProductPayload:
        try:
            row = inventory.set_default_product(
                info.context.services.engine,
                viewer=info.context.viewer,
                category=DeviceCategoryEnum(category),
                product_id=_pk(product_id, "Product"),
            )
        except DstrackError as error:
            return ProductPayload(product=None, errors=_errors(error))
        return ProductPayload(product=Product.from_row(row), errors=[])

    @strawberry.mutation
    async def create_device(self, info: Info, input: CreateDeviceInput) -> DevicePayload:
        new = devices.NewDevice(
            organization_id=_pk(input.organization_id, "Organization"),
            category=DeviceCategoryEnum(input.category),
            contract_id=_pk(input.contract_id, "Contract"),
            name=input.name,
            product_id=_pk(input.product_id, "Product"),
            description=input.description,
            active=input.active is not False,
            ssl_source=input.ssl_source,
            domain=input.domain,
            create_ssl_certificate=input.create_ssl_certificate is not False,
        )
        try:
            row = await devices.create_device(
                info.context.services, viewer=info.context.viewer, new=new
            )
        except DstrackError as error:
            return DevicePayload(device=None, errors=_errors(error))
        return DevicePayload(device=Device.from_row(row), errors=[])

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
        changes = devices.DeviceChanges(
            name=input.name,
            product_id=_pk(input.product_id, "Product"),
            contract_id=_pk(input.contract_id, "Contract"),
            description=input.description,
            category=DeviceCategoryEnum(input.category) if input.category else None,
            ssl_source=input.ssl_source,
            domain=input.domain,
            expires_at=input.expires_at,
            registrar=input.registrar,
        )
        try:
            row, result = await devices.update_device(
                info.context.services,
                viewer=info.context.viewer,
                device_id=_pk(id, "Device"),
                changes=changes,
                update_details=bool(update_details),
            )
        except DstrackError as error:
            return DevicePayload(device=None, errors=_errors(error))
        errors = _errors(result.error) if result is not None and result.error else []
        return DevicePayload(device=Device.from_row(row), errors=errors)

    @strawberry.mutation
    async def set_device_active(self, info: Info, id: strawberry.ID, active: bool) -> DevicePayload:
        try:
            row = await devices.set_device_active(
                info.context.services,
                viewer=info.context.viewer,
                device_id=_pk(id, "Device"),
                active=active,
            )
        except DstrackError as error:
            return DevicePayload(device=None, errors=_errors(error))
        return DevicePayload(device=Device.from_row(row), errors=[])

    @strawberry.mutation(
        description='"Update SSL Certificate Details" / "Update Domain Details", '
        "one or many devices."
    )
    async def force_update(self, info: Info, ids: list[strawberry.ID]) -> ForceUpdatePayload:
        try:
            results = await devices.force_update(
                info.context.services,
                viewer=info.context.viewer,
                device_ids=[_pk(i, "Device") or 0 for i in ids],
            )
        except DstrackError as error:
            raise GraphQLError(error.message, extensions={"code": error.code.value}) from error
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
            devices.set_tracking_enabled(
                info.context.services, viewer=info.context.viewer, enabled=enabled
            )
        except DstrackError as error:
            raise GraphQLError(error.message, extensions={"code": error.code.value}) from error
        return TrackingSettings(enabled=enabled)

    @strawberry.mutation
    async def create_security_level(
        self, info: Info, input: CreateSecurityLevelInput
    ) -> SecurityLevelPayload:
        try:
            row = access.create_security_level(
                info.context.services.engine,
                viewer=info.context.viewer,
                name=input.name,
                crm_access=input.crm_access,
                view_organization_types=[
                    OrganizationType(t) for t in input.view_organization_types
                ],
                can_add_devices=input.can_add_devices,
                can_edit_devices=input.can_edit_devices,
                can_delete_devices=input.can_delete_devices,
                is_admin=bool(input.is_admin),
            )
        except DstrackError as error:
            return SecurityLevelPayload(security_level=None, errors=_errors(error))
        return SecurityLevelPayload(security_level=SecurityLevel.from_row(row), errors=[])

    @strawberry.mutation(description="Returns the user's API token once; only its hash is kept.")
    async def create_user(self, info: Info, input: CreateUserInput) -> CreateUserPayload:
        try:
            user, level, token = access.create_user(
                info.context.services.engine,
                viewer=info.context.viewer,
                name=input.name,
                security_level_id=_pk(input.security_level_id, "SecurityLevel"),
            )
        except DstrackError as error:
            return CreateUserPayload(user=None, token=None, errors=_errors(error))
        assert user.id is not None
        return CreateUserPayload(
            user=User(
                id=strawberry.ID(encode_id("User", user.id)),
                name=user.name,
                security_level=SecurityLevel.from_row(level),
            ),
            token=token,
            errors=[],
        )

    import_devices = import_devices_field
