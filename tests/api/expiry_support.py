"""Steps the expiry tests (ordering, forecast, dashboard) share: devices expiring when wanted,
a user restricted to some organization types."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.api import helpers
from tests.conftest import GraphQLClient
from tests.fakes import pki

CREATE_LEVEL = """
mutation($input: CreateSecurityLevelInput!) {
  createSecurityLevel(input: $input) { securityLevel { id } errors { code message } }
}"""
CREATE_USER = """
mutation($name: String!, $level: ID!) {
  createUser(input: {name: $name, securityLevelId: $level}) { token errors { code message } }
}"""
CREATE_DEVICE = """
mutation($input: CreateDeviceInput!) {
  createDevice(input: $input) { device { id expiresAt } errors { field code message } }
}"""
SET_ACTIVE = """
mutation($id: ID!, $active: Boolean!) {
  setDeviceActive(id: $id, active: $active) { errors { code message } }
}"""


def pem_expiring_at(cn: str, not_after: dt.datetime) -> str:
    """A PEM certificate for ``cn`` whose validity ends at ``not_after`` (seconds precision)."""
    not_after = not_after.replace(microsecond=0)
    return pki.test_ca().leaf(cn, not_before=not_after - dt.timedelta(days=90), days=90).pem


async def certificate(api: GraphQLClient, org: str, name: str, not_after: dt.datetime) -> str:
    """The ID of a new PEM certificate device named ``name`` expiring at ``not_after``."""
    device = await helpers.ssl_device(api, org, pem_expiring_at(name, not_after), name=name)
    return str(device["id"])


async def standard(api: GraphQLClient, org: str, name: str) -> str:
    """The ID of a new device without any expiry."""
    fields = {"organizationId": org, "category": "STANDARD", "name": name}
    payload = (await api.ok(CREATE_DEVICE, input=fields))["createDevice"]
    assert payload["errors"] == []
    return str(payload["device"]["id"])


async def deactivate(api: GraphQLClient, device: str) -> None:
    assert (await api.ok(SET_ACTIVE, id=device, active=False))["setDeviceActive"]["errors"] == []


async def restricted_token(api: GraphQLClient, types: list[str], name: str = "carol") -> str:
    """The API token of a new user who may view organizations of ``types`` only."""
    level_input: dict[str, Any] = {
        "name": f"Only {', '.join(types)}",
        "crmAccess": True,
        "viewOrganizationTypes": types,
        "canAddDevices": False,
        "canEditDevices": False,
        "canDeleteDevices": False,
    }
    level = (await api.ok(CREATE_LEVEL, input=level_input))["createSecurityLevel"]
    assert level["errors"] == []
    user = (await api.ok(CREATE_USER, name=name, level=level["securityLevel"]["id"]))["createUser"]
    assert user["errors"] == []
    return str(user["token"])
