"""A name made only of whitespace and invisible characters reads as nothing: for every named
entity it is a ``REQUIRED`` error, and nothing is saved."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GraphQLClient
from tests.security.support import (
    CREATE_CONTRACT,
    CREATE_DEVICE,
    CREATE_LEVEL,
    CREATE_ORGANIZATION,
    CREATE_PRODUCT,
    CREATE_USER,
    UPDATE_DEVICE,
    stored_text,
)
from tracking.refresh.services import Services

BLANKS = {
    "zero-width space": "\u200b",
    "joiners and BOM": " \u200c\u200d\u2060\ufeff ",
    "soft hyphen": "\u00ad",
    "Mongolian vowel separator": "\u180e",
    "Hangul filler": "\u3164",
    "braille blank": "\u2800",
    "ideographic space and tab": "\u3000\t",
}
CREATE_CHANNEL = """
mutation($input: CreateNotificationChannelInput!) {
  createNotificationChannel(input: $input) { channel { id } errors { field code message } }
}"""


def _errors(body: dict[str, Any], mutation: str) -> list[tuple[str | None, str]]:
    assert "errors" not in body, body
    payload = body["data"][mutation]
    return [(e["field"], e["code"]) for e in payload["errors"]]


@pytest.fixture
async def org(api: GraphQLClient) -> str:
    body = await api.ok(CREATE_ORGANIZATION, input={"name": "Acme", "type": "CUSTOMER"})
    return str(body["createOrganization"]["organization"]["id"])


@pytest.mark.parametrize("blank", BLANKS.values(), ids=BLANKS.keys())
async def test_every_named_entity_refuses_a_name_that_reads_as_nothing(
    api: GraphQLClient, services: Services, org: str, blank: str
) -> None:
    device = (
        await api.ok(
            CREATE_DEVICE, input={"organizationId": org, "category": "STANDARD", "name": "Kept"}
        )
    )["createDevice"]["device"]
    level = {
        "name": blank,
        "crmAccess": True,
        "viewOrganizationTypes": ["CUSTOMER"],
        "canAddDevices": True,
        "canEditDevices": True,
        "canDeleteDevices": False,
    }
    before = stored_text(services)
    attempts = {
        "createOrganization": (CREATE_ORGANIZATION, {"input": {"name": blank, "type": "CUSTOMER"}}),
        "createContract": (CREATE_CONTRACT, {"input": {"organizationId": org, "name": blank}}),
        "createProduct": (CREATE_PRODUCT, {"input": {"name": blank}}),
        "createSecurityLevel": (CREATE_LEVEL, {"input": level}),
        "createDevice": (
            CREATE_DEVICE,
            {"input": {"organizationId": org, "category": "STANDARD", "name": blank}},
        ),
        "updateDevice": (UPDATE_DEVICE, {"id": device["id"], "input": {"name": blank}}),
        "createNotificationChannel": (
            CREATE_CHANNEL,
            {"input": {"name": blank, "kind": "EMAIL", "emailTo": ["ops@example.com"]}},
        ),
    }
    for mutation, (query, variables) in attempts.items():
        body = await api.execute(query, **variables)
        assert _errors(body, mutation) == [("name", "REQUIRED")], mutation
    assert stored_text(services) == before


async def test_a_user_named_nothing_is_refused(api: GraphQLClient, services: Services) -> None:
    level = (
        await api.ok(
            CREATE_LEVEL,
            input={
                "name": "Technicians",
                "crmAccess": True,
                "viewOrganizationTypes": ["CUSTOMER"],
                "canAddDevices": True,
                "canEditDevices": True,
                "canDeleteDevices": False,
            },
        )
    )["createSecurityLevel"]["securityLevel"]
    before = stored_text(services)
    body = await api.execute(
        CREATE_USER, input={"name": "\u200b\u3164", "securityLevelId": level["id"]}
    )
    assert _errors(body, "createUser") == [("name", "REQUIRED")]
    assert stored_text(services) == before


async def test_visible_text_around_invisible_characters_is_a_name(api: GraphQLClient) -> None:
    body = await api.ok(CREATE_ORGANIZATION, input={"name": "\u200bAcme\u200b", "type": "CUSTOMER"})
    assert body["createOrganization"]["errors"] == []
