"""GraphQL types of the inventory: organizations, contracts and products."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.types.common import Node, OrganizationType, PageInfo, UserError
from models import Contract as ContractRow
from models import Organization as OrganizationRow
from models import OrganizationType as OrganizationTypeEnum
from models import Product as ProductRow
from tracking.core.ids import encode_id
from tracking.manage.queries import OrganizationName, ProductName


@strawberry.type
class Organization(Node):
    name: str
    type: OrganizationType  # type: ignore[valid-type]
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: OrganizationRow | OrganizationName) -> Organization:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Organization", row.id)),
            name=row.name,
            type=OrganizationTypeEnum(row.type),
            pk=row.id,
        )


@strawberry.type
class Contract(Node):
    name: str
    organization_pk: strawberry.Private[int]

    @strawberry.field
    async def organization(self, info: Info) -> Organization:
        row = await info.context.loaders.organization.load(self.organization_pk)
        return Organization.from_row(row)

    @classmethod
    def from_row(cls, row: ContractRow) -> Contract:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Contract", row.id)),
            name=row.name,
            organization_pk=row.organization_id,
        )


@strawberry.type
class Product(Node):
    name: str
    is_system: bool

    @classmethod
    def from_row(cls, row: ProductRow | ProductName) -> Product:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Product", row.id)), name=row.name, is_system=row.is_system
        )


@strawberry.type
class OrganizationEdge:
    cursor: str
    node: Organization


@strawberry.type
class OrganizationConnection:
    edges: list[OrganizationEdge]
    page_info: PageInfo


@strawberry.type
class OrganizationPayload:
    organization: Organization | None
    errors: list[UserError]


@strawberry.type
class ContractPayload:
    contract: Contract | None
    errors: list[UserError]


@strawberry.type
class ProductPayload:
    product: Product | None
    errors: list[UserError]
