"""Mutations of the inventory: organizations, contracts and products."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.inputs import (
    CreateContractInput,
    CreateOrganizationInput,
    CreateProductInput,
)
from api.mutations.payloads import payload, pk
from api.types import (
    Contract,
    ContractPayload,
    DeviceCategory,
    Organization,
    OrganizationPayload,
    Product,
    ProductPayload,
)
from models import DeviceCategory as DeviceCategoryEnum
from models import OrganizationType
from tracking.manage import inventory


@strawberry.type
class InventoryMutation:
    @strawberry.mutation
    async def create_organization(
        self, info: Info, input: CreateOrganizationInput
    ) -> OrganizationPayload:
        return await payload(
            OrganizationPayload,
            "organization",
            lambda: inventory.create_organization(
                info.context.services.engine,
                viewer=info.context.viewer,
                name=input.name,
                type=OrganizationType(input.type),
            ),
            Organization.from_row,
        )

    @strawberry.mutation
    async def create_contract(self, info: Info, input: CreateContractInput) -> ContractPayload:
        return await payload(
            ContractPayload,
            "contract",
            lambda: inventory.create_contract(
                info.context.services.engine,
                viewer=info.context.viewer,
                organization_id=pk(input.organization_id, "Organization"),
                name=input.name,
            ),
            Contract.from_row,
        )

    @strawberry.mutation
    async def create_product(self, info: Info, input: CreateProductInput) -> ProductPayload:
        return await payload(
            ProductPayload,
            "product",
            lambda: inventory.create_product(
                info.context.services.engine, viewer=info.context.viewer, name=input.name
            ),
            Product.from_row,
        )

    @strawberry.mutation
    async def set_default_product(
        self,
        info: Info,
        category: DeviceCategory,  # type: ignore[valid-type]
        product_id: strawberry.ID,
    ) -> ProductPayload:
        return await payload(
            ProductPayload,
            "product",
            lambda: inventory.set_default_product(
                info.context.services.engine,
                viewer=info.context.viewer,
                category=DeviceCategoryEnum(category),
                product_id=pk(product_id, "Product"),
            ),
            Product.from_row,
        )
