"""GraphQL types every feature shares: the Node interface, user errors, page info, enums."""

from __future__ import annotations

import strawberry

from models import DeviceCategory as DeviceCategoryEnum
from models import OrganizationType as OrganizationTypeEnum
from models import SslSourceKind as SslSourceKindEnum
from tracking.core.errors import DstrackError

DeviceCategory = strawberry.enum(DeviceCategoryEnum)
OrganizationType = strawberry.enum(OrganizationTypeEnum)
SslSourceKind = strawberry.enum(SslSourceKindEnum)


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class UserError:
    field: str | None
    code: str
    message: str

    @classmethod
    def from_error(cls, error: DstrackError) -> UserError:
        return cls(field=error.field, code=error.code.value, message=error.message)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None
