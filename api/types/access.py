"""GraphQL types of access: security levels and users."""

from __future__ import annotations

import strawberry

from api.types.common import Node, OrganizationType, UserError
from models import OrganizationType as OrganizationTypeEnum
from models import SecurityLevel as SecurityLevelRow
from models import User as UserRow
from tracking.core.ids import encode_id


@strawberry.type
class SecurityLevel(Node):
    name: str
    crm_access: bool
    view_organization_types: list[OrganizationType]  # type: ignore[valid-type]
    can_add_devices: bool
    can_edit_devices: bool
    can_delete_devices: bool
    is_admin: bool

    @classmethod
    def from_row(cls, row: SecurityLevelRow) -> SecurityLevel:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("SecurityLevel", row.id)),
            name=row.name,
            crm_access=row.crm_access,
            view_organization_types=[OrganizationTypeEnum(t) for t in row.view_organization_types],
            can_add_devices=row.can_add_devices,
            can_edit_devices=row.can_edit_devices,
            can_delete_devices=row.can_delete_devices,
            is_admin=row.is_admin,
        )


@strawberry.type
class User(Node):
    name: str
    security_level: SecurityLevel

    @classmethod
    def from_rows(cls, row: UserRow, level: SecurityLevelRow) -> User:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("User", row.id)),
            name=row.name,
            security_level=SecurityLevel.from_row(level),
        )


@strawberry.type
class SecurityLevelPayload:
    security_level: SecurityLevel | None
    errors: list[UserError]


@strawberry.type
class CreateUserPayload:
    user: User | None
    token: str | None
    errors: list[UserError]
