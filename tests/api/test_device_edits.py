"""Editing devices: plain fields, the category lock, a new SSL Source, "Save & Check"."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import helpers, queries
from tests.conftest import GraphQLClient, World, api_client, services_with
from tests.fakes import pki
from tests.fakes.tls_server import FakeTlsServer, standard_certificates
from tracking.core.ids import encode_id
from tracking.refresh.services import Services

CREATE_PRODUCT = """
mutation($name: String!) { createProduct(input: {name: $name}) { product { id } errors { code } } }
"""
SET_ACTIVE = """
mutation($id: ID!, $active: Boolean!) {
  setDeviceActive(id: $id, active: $active) {
    device { id active updateSchedule { interval } activity { text } }
    errors { code }
  }
}"""
SET_TRACKING = "mutation($on: Boolean!) { setTrackingEnabled(enabled: $on) { enabled } }"
CREATE_LEVEL = """
mutation($input: CreateSecurityLevelInput!) {
  createSecurityLevel(input: $input) { securityLevel { id } errors { code } }
}"""
CREATE_USER = """
mutation($name: String!, $level: ID!) {
  createUser(input: {name: $name, securityLevelId: $level}) { token errors { code } }
}"""


async def _update(
    api: GraphQLClient, device_id: str, update_details: bool = False, **fields: Any
) -> dict[str, Any]:
    """The updateDevice payload for an input of the given fields."""
    data = await api.ok(
        queries.UPDATE_DEVICE, id=device_id, input=fields, updateDetails=update_details
    )
    payload: dict[str, Any] = data["updateDevice"]
    return payload


async def _read(api: GraphQLClient, device_id: str) -> dict[str, Any]:
    device: dict[str, Any] = (await api.ok(queries.DEVICE, id=device_id))["device"]
    return device


async def _standard(api: GraphQLClient, org: str, name: str = "Router") -> dict[str, Any]:
    payload = await helpers.create_device(api, organizationId=org, category="STANDARD", name=name)
    assert payload["errors"] == []
    device: dict[str, Any] = payload["device"]
    return device


async def _contract(api: GraphQLClient, org: str, name: str = "Support") -> str:
    payload = (await api.ok(queries.CREATE_CONTRACT, org=org, name=name))["createContract"]
    assert payload["errors"] == []
    return str(payload["contract"]["id"])


def _codes(payload: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in payload["errors"]]


# Plain fields ------------------------------------------------------------------------


async def test_name_description_product_and_contract_are_edited(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    contract = await _contract(api, org, "Hosting")
    product = (await api.ok(CREATE_PRODUCT, name="Managed SSL"))["createProduct"]["product"]["id"]
    device = await helpers.ssl_device(api, org, pki.test_ca().leaf("edit.example").pem)

    payload = await _update(
        api,
        device["id"],
        name="  Web front ",
        description="Renewed by\nthe vendor",
        productId=product,
        contractId=contract,
    )
    assert payload["errors"] == []
    edited = payload["device"]
    assert edited["name"] == "Web front"
    assert edited["description"] == "Renewed by\nthe vendor"
    assert edited["product"]["id"] == product
    assert edited["contract"] == {"id": contract, "name": "Hosting"}
    # What was not edited stays as it was; no retrieval happened.
    assert edited["sslDetails"] == device["sslDetails"]
    assert edited["rawFiles"] == device["rawFiles"]
    assert await _read(api, device["id"]) == edited


async def test_unmentioned_fields_are_left_alone_and_blank_description_clears(
    api: GraphQLClient,
) -> None:
    org = await helpers.organization(api)
    payload = await helpers.create_device(
        api, organizationId=org, category="STANDARD", name="Router", description="Rack 4"
    )
    device = payload["device"]
    renamed = (await _update(api, device["id"], name="Core router"))["device"]
    assert renamed["description"] == "Rack 4"
    cleared = (await _update(api, device["id"], description="  "))["device"]
    assert cleared["name"] == "Core router"
    assert cleared["description"] is None


INVALID_EDITS: list[tuple[dict[str, str], tuple[str, str]]] = [
    ({"name": ""}, ("name", "REQUIRED")),
    ({"name": "x" * 201}, ("name", "TOO_LONG")),
    ({"name": "Tab\there"}, ("name", "INVALID_INPUT")),
    ({"description": "x" * 4001}, ("description", "TOO_LONG")),
    ({"productId": encode_id("Product", 99)}, ("productId", "NOT_FOUND")),
    ({"contractId": encode_id("Contract", 99)}, ("contractId", "NOT_FOUND")),
]


async def test_invalid_edits_save_nothing(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    device = await _standard(api, org)
    for fields, expected in INVALID_EDITS:
        changes: dict[str, Any] = {"description": "changed too", **fields}
        payload = await _update(api, device["id"], **changes)
        assert payload["device"] is None, fields
        assert _codes(payload) == [expected], fields
    assert await _read(api, device["id"]) == device


async def test_a_contract_of_another_organization_is_refused_on_edit(api: GraphQLClient) -> None:
    acme = await helpers.organization(api, "Acme")
    globex = await helpers.organization(api, "Globex")
    device = await _standard(api, acme)
    payload = await _update(api, device["id"], contractId=await _contract(api, globex))
    assert _codes(payload) == [("contractId", "CONTRACT_ORGANIZATION_MISMATCH")]
    assert (await _read(api, device["id"]))["contract"] is None


async def test_editing_an_unknown_device_is_not_found(api: GraphQLClient) -> None:
    await helpers.organization(api)
    for device_id in (encode_id("Device", 999), encode_id("Organization", 1), "junk"):
        payload = await _update(api, device_id, name="x")
        assert payload["device"] is None, device_id
        assert _codes(payload) == [("id", "NOT_FOUND")], device_id


async def test_a_user_without_edit_rights_cannot_edit(api: GraphQLClient) -> None:
    org = await helpers.organization(api, type="CUSTOMER")
    device = await _standard(api, org)
    level = (
        await api.ok(
            CREATE_LEVEL,
            input={
                "name": "Read only",
                "crmAccess": True,
                "viewOrganizationTypes": ["CUSTOMER"],
                "canAddDevices": False,
                "canEditDevices": False,
                "canDeleteDevices": False,
            },
        )
    )["createSecurityLevel"]["securityLevel"]["id"]
    token = (await api.ok(CREATE_USER, name="viewer", level=level))["createUser"]["token"]
    viewer = api.as_user(token)
    assert (await viewer.ok(queries.DEVICE, id=device["id"]))["device"]["name"] == "Router"
    payload = (await viewer.ok(queries.UPDATE_DEVICE, id=device["id"], input={"name": "Hacked"}))[
        "updateDevice"
    ]
    assert [e["code"] for e in payload["errors"]] == ["FORBIDDEN"]
    assert (await _read(api, device["id"]))["name"] == "Router"


# The category lock ----------------------------------------------------------------------


@pytest.mark.parametrize("category", ["STANDARD", "DOMAIN"])
async def test_an_ssl_devices_category_is_locked(api: GraphQLClient, category: str) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, pki.test_ca().leaf("locked.example").pem)
    payload = await _update(api, device["id"], category=category, name="Renamed")
    assert payload["device"] is None
    [error] = payload["errors"]
    assert (error["field"], error["code"]) == ("category", "CATEGORY_LOCKED")
    assert error["message"]
    assert await _read(api, device["id"]) == device


@pytest.mark.parametrize("category", ["SSL_CERTIFICATE", "DOMAIN"])
async def test_a_standard_device_cannot_become_a_tracked_one(
    api: GraphQLClient, category: str
) -> None:
    org = await helpers.organization(api)
    device = await _standard(api, org)
    payload = await _update(api, device["id"], category=category)
    assert _codes(payload) == [("category", "CATEGORY_LOCKED")]
    assert await _read(api, device["id"]) == device


async def test_keeping_the_same_category_is_fine(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    standard = await _standard(api, org)
    payload = await _update(api, standard["id"], category="STANDARD", name="Switch")
    assert payload["errors"] == []
    assert payload["device"]["category"] == "STANDARD"
    assert payload["device"]["name"] == "Switch"

    ssl = await helpers.ssl_device(api, org, pki.test_ca().leaf("same.example").pem)
    payload = await _update(api, ssl["id"], category="SSL_CERTIFICATE", name="Same")
    assert payload["errors"] == []
    assert payload["device"]["name"] == "Same"


# A new SSL Source ---------------------------------------------------------------------


async def test_a_new_host_is_retrieved_again(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"), name="Site")

    payload = await _update(api, device["id"], sslSource=world.host("expired.test"))
    assert payload["errors"] == []
    edited = payload["device"]
    expired = standard_certificates()["expired.test"].leaf.cert
    assert edited["name"] == "Site"
    assert edited["sslSource"]["host"] == "expired.test"
    assert edited["sslDetails"]["commonName"] == "expired.test"
    assert edited["sslDetails"]["validUntil"] == expired.not_valid_after_utc.isoformat()
    assert world.tls.server_names_seen[-1] == "expired.test"
    assert len(edited["rawFiles"]) == 2
    assert edited["rawFiles"][0]["fileName"].startswith("ssl-expired.test-")
    notes = [n["text"] for n in edited["activity"]]
    assert len(notes) > len(device["activity"])
    assert any("SSL Source changed" in n for n in notes)
    assert "good.test" in notes[0] or "expired.test" in notes[0]
    assert "Common Name" in notes[0] and "expired.test" in notes[0]
    assert edited["updateSchedule"]["interval"] == "PT24H"  # expired: every day
    assert await _read(api, device["id"]) == edited


async def test_a_host_replaced_by_a_pem_stops_its_schedule(
    api: GraphQLClient, world: World
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    assert device["updateSchedule"] is not None
    pem = pki.test_ca().leaf("pasted.example").pem
    edited = (await _update(api, device["id"], sslSource=pem))["device"]
    assert edited["sslSource"] == {"kind": "PEM", "host": None, "port": None, "pem": pem}
    assert edited["sslDetails"]["commonName"] == "pasted.example"
    assert edited["sslDetails"]["hostnameMatches"] is None
    assert edited["updateSchedule"] is None
    assert len(edited["rawFiles"]) == 2


async def test_a_pem_replaced_by_a_host_gets_a_schedule(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, pki.test_ca().leaf("pasted.example").pem)
    assert device["updateSchedule"] is None
    edited = (await _update(api, device["id"], sslSource=world.host("good.test")))["device"]
    assert edited["sslSource"]["kind"] == "HOST"
    assert edited["sslDetails"]["commonName"] == "good.test"
    assert edited["updateSchedule"] is not None


INVALID_SOURCES = {
    "\\datto.com": "INVALID_URI_FORMAT",
    "htps:\\\\datto.com": "HTTP_WEB_REQUEST_ERROR",
    "lalala.test": "CERTIFICATE_NOT_FOUND",
    "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----": "INVALID_PEM",
    "   ": "REQUIRED",
}


async def test_an_invalid_new_source_changes_nothing(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    for source, code in INVALID_SOURCES.items():
        payload = await _update(api, device["id"], sslSource=source, name="Renamed")
        assert payload["device"] is None, source
        assert [e["code"] for e in payload["errors"]] == [code], source
    assert await _read(api, device["id"]) == device


async def test_a_standard_device_has_no_ssl_source(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    device = await _standard(api, org)
    payload = await _update(api, device["id"], sslSource=pki.test_ca().leaf("x.example").pem)
    assert _codes(payload) == [("sslSource", "INVALID_INPUT")]
    assert await _read(api, device["id"]) == device


async def test_a_new_host_is_refused_while_tracking_is_off(
    api: GraphQLClient, world: World
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, pki.test_ca().leaf("pem.example").pem)
    await api.ok(SET_TRACKING, on=False)
    connections = len(world.tls.connections)
    payload = await _update(api, device["id"], sslSource=world.host("good.test"))
    assert [e["code"] for e in payload["errors"]] == ["TRACKING_DISABLED"]
    assert len(world.tls.connections) == connections
    assert await _read(api, device["id"]) == device


# "Save & Check for SSL Certificate" ------------------------------------------------------


async def test_update_details_with_nothing_edited_retrieves_again(
    api: GraphQLClient, world: World
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    connections = len(world.tls.connections)

    payload = await _update(api, device["id"], update_details=True)
    assert payload["errors"] == []
    checked = payload["device"]
    assert len(world.tls.connections) == connections + 1
    assert checked["activity"][0]["text"].endswith("no changes.")
    assert len(checked["activity"]) == len(device["activity"]) + 1
    assert checked["rawFiles"] == device["rawFiles"]  # nothing changed, no new RAW file
    assert checked["sslDetails"] == device["sslDetails"]
    assert checked["lastUpdatedAt"] >= device["lastUpdatedAt"]


async def test_update_details_saves_the_edits_and_retrieves(
    api: GraphQLClient, world: World
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    payload = await _update(api, device["id"], update_details=True, name="Checked")
    assert payload["errors"] == []
    assert payload["device"]["name"] == "Checked"
    assert payload["device"]["activity"][0]["text"].endswith("no changes.")


async def test_update_details_of_a_pem_decodes_again(api: GraphQLClient, world: World) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, pki.test_ca().leaf("again.example").pem)
    connections = len(world.tls.connections)
    payload = await _update(api, device["id"], update_details=True)
    assert payload["errors"] == []
    assert payload["device"]["activity"][0]["text"].endswith("no changes.")
    assert len(world.tls.connections) == connections


async def test_update_details_when_the_host_is_gone_records_the_failure(
    services: Services, world: World
) -> None:
    async with api_client(services) as api:
        org = await helpers.organization(api)
        with FakeTlsServer({"good.test": standard_certificates()["good.test"]}) as server:
            device = await helpers.ssl_device(api, org, f"good.test:{server.address[1]}")
        # The server is gone now.

        payload = await _update(api, device["id"], update_details=True, name="Gone")
        assert [e["code"] for e in payload["errors"]] == ["CERTIFICATE_NOT_FOUND"]
        failed = payload["device"]
        assert failed["name"] == "Gone"  # the edit was saved; only the retrieval failed
        assert failed["lastUpdateError"] == payload["errors"][0]["message"]
        assert failed["sslDetails"] == device["sslDetails"]  # the previous audit stays
        assert failed["updateSchedule"]["interval"] == "PT1H"
        assert "failed" in failed["activity"][0]["text"]


async def test_update_details_of_a_standard_device_is_all_or_nothing(
    api: GraphQLClient,
) -> None:
    org = await helpers.organization(api)
    device = await _standard(api, org)
    payload = await _update(api, device["id"], update_details=True, name="Renamed")
    stored = await _read(api, device["id"])
    if payload["errors"]:
        assert stored == device  # refused: nothing saved
    else:
        assert stored["name"] == "Renamed" == payload["device"]["name"]


async def test_update_details_while_tracking_is_off_saves_nothing(
    api: GraphQLClient, world: World
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    await api.ok(SET_TRACKING, on=False)
    device = await _read(api, device["id"])
    payload = await _update(api, device["id"], update_details=True, name="Renamed")
    assert [e["code"] for e in payload["errors"]] == ["TRACKING_DISABLED"]
    assert await _read(api, device["id"]) == device


# Activation ----------------------------------------------------------------------------


async def test_inactivating_a_host_device_removes_its_schedule_until_reactivated(
    api: GraphQLClient, world: World
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    off = (await api.ok(SET_ACTIVE, id=device["id"], active=False))["setDeviceActive"]
    assert off["errors"] == []
    assert off["device"]["active"] is False
    assert off["device"]["updateSchedule"] is None
    assert "inactivated" in off["device"]["activity"][0]["text"]
    on = (await api.ok(SET_ACTIVE, id=device["id"], active=True))["setDeviceActive"]
    assert on["device"]["active"] is True
    assert on["device"]["updateSchedule"] == {"interval": device["updateSchedule"]["interval"]}


async def test_private_targets_are_refused_on_edit_too(services: Services, world: World) -> None:
    async with api_client(services) as api:
        org = await helpers.organization(api)
        device = await helpers.ssl_device(api, org, pki.test_ca().leaf("guard.example").pem)
    guarded = services_with(services, allow_private_targets=False)
    async with api_client(guarded) as api:
        connections = len(world.tls.connections)
        payload = await _update(api, device["id"], sslSource=world.host("good.test"))
        assert [e["code"] for e in payload["errors"]] == ["PRIVATE_ADDRESS_REFUSED"]
        assert len(world.tls.connections) == connections
        assert await _read(api, device["id"]) == device
