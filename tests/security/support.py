"""Shared by the security tests: GraphQL documents, users of every kind, row counts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from tests.conftest import GraphQLClient
from tracking.refresh.services import Services

CREATE_LEVEL = """
mutation($input: CreateSecurityLevelInput!) {
  createSecurityLevel(input: $input) {
    securityLevel { id name isAdmin crmAccess viewOrganizationTypes }
    errors { field code message }
  }
}"""
CREATE_USER = """
mutation($input: CreateUserInput!) {
  createUser(input: $input) { user { id name } token errors { field code message } }
}"""
CREATE_ORGANIZATION = """
mutation($input: CreateOrganizationInput!) {
  createOrganization(input: $input) {
    organization { id name type } errors { field code message }
  }
}"""
CREATE_CONTRACT = """
mutation($input: CreateContractInput!) {
  createContract(input: $input) { contract { id name } errors { field code message } }
}"""
CREATE_PRODUCT = """
mutation($input: CreateProductInput!) {
  createProduct(input: $input) { product { id name } errors { field code message } }
}"""
SET_DEFAULT_PRODUCT = """
mutation($category: DeviceCategory!, $productId: ID!) {
  setDefaultProduct(category: $category, productId: $productId) {
    product { id } errors { field code message }
  }
}"""
CREATE_DEVICE = """
mutation($input: CreateDeviceInput!) {
  createDevice(input: $input) {
    device { id name rawFiles { id url } activity { id } }
    errors { field code message }
  }
}"""
UPDATE_DEVICE = """
mutation($id: ID!, $input: UpdateDeviceInput!, $updateDetails: Boolean = false) {
  updateDevice(id: $id, input: $input, updateDetails: $updateDetails) {
    device { id name description } errors { field code message }
  }
}"""
SET_ACTIVE = """
mutation($id: ID!, $active: Boolean!) {
  setDeviceActive(id: $id, active: $active) { device { id active } errors { field code message } }
}"""
FORCE_UPDATE = """
mutation($ids: [ID!]!) {
  forceUpdate(ids: $ids) {
    results {
      deviceId changed message errors { field code message }
      device { id name sslDetails { commonName } }
    }
  }
}"""
SET_TRACKING = """
mutation($enabled: Boolean!) { setTrackingEnabled(enabled: $enabled) { enabled } }"""


async def make_user(
    api: GraphQLClient,
    name: str,
    *,
    crm_access: bool = True,
    types: tuple[str, ...] = ("CUSTOMER",),
    add: bool = True,
    edit: bool = True,
    admin: bool = False,
) -> GraphQLClient:
    """A security level and a user on it, both created through the API (as administrator)."""
    level = (
        await api.ok(
            CREATE_LEVEL,
            input={
                "name": f"{name} level",
                "crmAccess": crm_access,
                "viewOrganizationTypes": list(types),
                "canAddDevices": add,
                "canEditDevices": edit,
                "canDeleteDevices": False,
                "isAdmin": admin,
            },
        )
    )["createSecurityLevel"]
    assert level["errors"] == [], level
    created = (
        await api.ok(
            CREATE_USER, input={"name": name, "securityLevelId": level["securityLevel"]["id"]}
        )
    )["createUser"]
    assert created["errors"] == [], created
    return api.as_user(created["token"])


def count(services: Services, model: type[SQLModel]) -> int:
    with Session(services.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def all_counts(services: Services) -> dict[str, int]:
    """Rows per table, for "nothing was saved" checks."""
    with Session(services.engine) as session:
        return {
            table.name: int(session.exec(select(func.count()).select_from(table)).one())  # type: ignore[call-overload]
            for table in SQLModel.metadata.sorted_tables
        }


# Spent by asking for a retrieval, even one whose target is then refused: that is what
# bounds a user probing for private addresses. Bookkeeping, not something saved.
BOOKKEEPING = {"retrieval_budgets"}


def stored_text(services: Services) -> str:
    """Every value of every row of every table, as text: what "nothing was saved" compares."""
    parts = []
    with Session(services.engine) as session:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in BOOKKEEPING:
                continue
            for row in session.execute(sa.select(table).order_by(*table.primary_key)).all():
                parts.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(parts)


def codes(payload: dict[str, Any]) -> list[str]:
    return [error["code"] for error in payload["errors"]]
