"""Mutations of access: security levels and users (administrators only)."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.inputs import CreateSecurityLevelInput, CreateUserInput
from api.mutations.payloads import payload, pk, user_errors
from api.types import CreateUserPayload, SecurityLevel, SecurityLevelPayload, User
from models import OrganizationType
from tracking.core.errors import DstrackError
from tracking.manage import access


@strawberry.type
class AccessMutation:
    @strawberry.mutation
    async def create_security_level(
        self, info: Info, input: CreateSecurityLevelInput
    ) -> SecurityLevelPayload:
        return await payload(
            SecurityLevelPayload,
            "security_level",
            lambda: access.create_security_level(
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
            ),
            SecurityLevel.from_row,
        )

    @strawberry.mutation(description="Returns the user's API token once; only its hash is kept.")
    async def create_user(self, info: Info, input: CreateUserInput) -> CreateUserPayload:
        try:
            user, level, token = access.create_user(
                info.context.services.engine,
                viewer=info.context.viewer,
                name=input.name,
                security_level_id=pk(input.security_level_id, "SecurityLevel"),
            )
        except DstrackError as error:
            return CreateUserPayload(user=None, token=None, errors=user_errors(error))
        return CreateUserPayload(user=User.from_rows(user, level), token=token, errors=[])
