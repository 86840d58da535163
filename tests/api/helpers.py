"""Small steps API tests repeat: create an organization, a device, read a device."""

from __future__ import annotations

from typing import Any

from tests.api import queries
from tests.conftest import GraphQLClient


async def organization(api: GraphQLClient, name: str = "Acme", type: str = "CUSTOMER") -> str:
    data = await api.ok(queries.CREATE_ORGANIZATION, name=name, type=type)
    payload = data["createOrganization"]
    assert payload["errors"] == []
    return str(payload["organization"]["id"])


async def create_device(api: GraphQLClient, **fields: Any) -> dict[str, Any]:
    """The createDevice payload (device and errors) for an input of the given fields."""
    data = await api.ok(queries.CREATE_DEVICE, input=fields)
    payload: dict[str, Any] = data["createDevice"]
    return payload


async def ssl_device(api: GraphQLClient, org: str, source: str, **fields: Any) -> dict[str, Any]:
    payload = await create_device(
        api, organizationId=org, category="SSL_CERTIFICATE", sslSource=source, **fields
    )
    assert payload["errors"] == [], payload["errors"]
    device: dict[str, Any] = payload["device"]
    return device


async def device_count(api: GraphQLClient) -> int:
    return int((await api.ok(queries.DEVICE_COUNT))["devices"]["totalCount"])
