"""checkAllAddresses end to end: a name with several addresses (127.0.0.2, 127.0.0.3 and ::1)
that serve different certificates on one port, through GraphQL, DNS, the guard and TLS."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.api.addresses_support import NAME, fingerprint, leaf, serving
from tests.conftest import GraphQLClient, World, api_client, services_with
from tests.security.support import make_user
from tracking.refresh.services import Services

DEVICE = """
  id name checkAllAddresses endpointsDisagree lastUpdateError
  sslDetails { fingerprintSha256 keyType keySize tlsVersion cipher }
  endpoints { address port fingerprintSha256 validUntil tlsVersion cipher error }
  activity { text }
  alerts { kind }
"""
CREATE = f"""
mutation($input: CreateDeviceInput!) {{
  createDevice(input: $input) {{ device {{ {DEVICE} }} errors {{ field code message }} }}
}}"""
UPDATE = f"""
mutation($id: ID!, $input: UpdateDeviceInput!, $updateDetails: Boolean = false) {{
  updateDevice(id: $id, input: $input, updateDetails: $updateDetails) {{
    device {{ {DEVICE} }} errors {{ field code message }}
  }}
}}"""
FORCE = f"""
mutation($ids: [ID!]!) {{
  forceUpdate(ids: $ids) {{ results {{ changed message device {{ {DEVICE} }} errors {{ code }} }} }}
}}"""


async def create(api: GraphQLClient, port: int, **fields: Any) -> dict[str, Any]:
    from tests.api import helpers

    org = await helpers.organization(api)
    data = await api.ok(
        CREATE,
        input={
            "organizationId": org,
            "category": "SSL_CERTIFICATE",
            "sslSource": f"{NAME}:{port}",
            **fields,
        },
    )
    payload: dict[str, Any] = data["createDevice"]
    assert payload["errors"] == [], payload["errors"]
    device: dict[str, Any] = payload["device"]
    return device


async def test_every_address_is_checked_and_disagreement_shown(
    api: GraphQLClient, world: World
) -> None:
    first, second = leaf(), leaf(key_kind="ec256")
    certificates = {"127.0.0.2": first, "127.0.0.3": second, "::1": first}
    with serving(world, certificates) as port:
        device = await create(api, port, checkAllAddresses=True)

    assert device["checkAllAddresses"] is True
    endpoints = device["endpoints"]
    assert [(e["address"], e["port"]) for e in endpoints] == [
        ("127.0.0.2", port),
        ("127.0.0.3", port),
        ("::1", port),
    ]
    assert [e["fingerprintSha256"] for e in endpoints] == [
        fingerprint(first),
        fingerprint(second),
        fingerprint(first),
    ]
    assert endpoints[1]["validUntil"] == second.leaf.cert.not_valid_after_utc.isoformat()
    assert all(e["error"] is None and e["tlsVersion"] and e["cipher"] for e in endpoints)
    assert device["endpointsDisagree"] is True
    # The device's details are those of the first address that answered.
    details = device["sslDetails"]
    assert details["fingerprintSha256"] == fingerprint(first)
    assert (details["keyType"], details["keySize"]) == ("RSA", 2048)
    note = device["activity"][0]["text"]
    assert "different certificates" in note
    assert f"127.0.0.2, ::1 serve {fingerprint(first)[:11]}" in note
    assert f"127.0.0.3 serves {fingerprint(second)[:11]}" in note


async def test_disagreement_raises_no_change_alert(api: GraphQLClient, world: World) -> None:
    certificates = {"127.0.0.2": leaf(), "127.0.0.3": leaf()}
    with serving(world, certificates) as port:
        device = await create(api, port, checkAllAddresses=True)
        data = await api.ok(FORCE, ids=[device["id"]])
    [result] = data["forceUpdate"]["results"]
    assert result["errors"] == [] and result["changed"] is False
    refreshed = result["device"]
    assert refreshed["endpointsDisagree"] is True
    assert refreshed["alerts"] == []
    note = refreshed["activity"][0]["text"]
    assert note.startswith("SSL certificate details checked from multi.test:")
    assert "no changes." in note and "127.0.0.3 serves" in note


async def test_agreeing_addresses(api: GraphQLClient, world: World) -> None:
    same = leaf()
    with serving(world, {"127.0.0.2": same, "127.0.0.3": same}) as port:
        device = await create(api, port, checkAllAddresses=True)
    assert device["endpointsDisagree"] is False
    assert {e["fingerprintSha256"] for e in device["endpoints"]} == {fingerprint(same)}
    assert "different certificates" not in device["activity"][0]["text"]


async def test_an_address_that_fails_is_listed_with_its_error(
    api: GraphQLClient, world: World
) -> None:
    """127.0.0.2 refuses connections: the details come from 127.0.0.3, the first that
    answered."""
    second = leaf()
    with serving(world, {"127.0.0.2": None, "127.0.0.3": second}) as port:
        device = await create(api, port, checkAllAddresses=True)
    down, up = device["endpoints"]
    assert down["address"] == "127.0.0.2" and down["fingerprintSha256"] is None
    assert down["error"] and "refused" in down["error"].lower()
    assert up == up | {"address": "127.0.0.3", "fingerprintSha256": fingerprint(second)}
    assert device["sslDetails"]["fingerprintSha256"] == fingerprint(second)
    assert device["endpointsDisagree"] is False


async def test_without_the_setting_one_address_is_checked(api: GraphQLClient, world: World) -> None:
    first, second = leaf(), leaf()
    with serving(world, {"127.0.0.2": first, "127.0.0.3": second}) as port:
        device = await create(api, port)
        assert device["checkAllAddresses"] is False
        assert [e["address"] for e in device["endpoints"]] == ["127.0.0.2"]
        assert device["endpointsDisagree"] is False
        # Turned on with Save & Check: every address from this update on.
        data = await api.ok(
            UPDATE, id=device["id"], input={"checkAllAddresses": True}, updateDetails=True
        )
    updated = data["updateDevice"]["device"]
    assert data["updateDevice"]["errors"] == []
    assert updated["checkAllAddresses"] is True
    assert [e["address"] for e in updated["endpoints"]] == ["127.0.0.2", "127.0.0.3"]
    assert updated["endpointsDisagree"] is True
    texts = [a["text"] for a in updated["activity"]]
    assert any(t.startswith("Check all addresses turned on") for t in texts)


async def test_no_address_answers(api: GraphQLClient, world: World) -> None:
    with serving(world, {"127.0.0.2": None, "127.0.0.3": None}) as port:
        from tests.api import helpers

        org = await helpers.organization(api)
        data = await api.ok(
            CREATE,
            input={
                "organizationId": org,
                "category": "SSL_CERTIFICATE",
                "sslSource": f"{NAME}:{port}",
                "checkAllAddresses": True,
            },
        )
    assert [e["code"] for e in data["createDevice"]["errors"]] == ["CERTIFICATE_NOT_FOUND"]


async def test_only_ssl_certificate_devices_take_the_setting(
    api: GraphQLClient, world: World
) -> None:
    from tests.api import helpers

    org = await helpers.organization(api)
    data = await api.ok(
        CREATE,
        input={
            "organizationId": org,
            "category": "STANDARD",
            "name": "router",
            "checkAllAddresses": True,
        },
    )
    assert data["createDevice"]["errors"] == [
        {
            "field": "checkAllAddresses",
            "code": "INVALID_INPUT",
            "message": "Only SSL Certificate devices check the addresses of a host.",
        }
    ]


async def test_one_retrieval_per_device(services: Services, world: World) -> None:
    """The per-user budget counts the device, not its addresses."""
    limited = services_with(services, retrievals_per_10_min=1)
    certificates = {"127.0.0.2": leaf(), "127.0.0.3": leaf(), "::1": leaf()}
    async with api_client(limited) as admin:
        user = await make_user(admin, "tech")
        with serving(world, certificates) as port:
            device = await create(user, port, checkAllAddresses=True)
            assert len(device["endpoints"]) == 3
            from tests.api import helpers

            org = await helpers.organization(admin, "Other")
            again = await user.ok(
                CREATE,
                input={
                    "organizationId": org,
                    "category": "SSL_CERTIFICATE",
                    "sslSource": f"{NAME}:{port}",
                },
            )
    assert [e["code"] for e in again["createDevice"]["errors"]] == ["RATE_LIMITED"]


@pytest.fixture(autouse=True)
def _loopback_aliases() -> None:
    """127.0.0.2 and 127.0.0.3 are loopback on Linux; elsewhere these tests cannot run."""
    try:
        socket.create_server(("127.0.0.3", 0)).close()
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError as exc:
        pytest.skip(f"no 127.0.0.3 or ::1 here: {exc}")


async def test_a_page_of_devices_shows_the_endpoints(api: GraphQLClient, world: World) -> None:
    """With and without sslDetails in the same query (the page's rows or the DataLoader)."""
    first, second = leaf(), leaf()
    with serving(world, {"127.0.0.2": first, "127.0.0.3": second}) as port:
        await create(api, port, checkAllAddresses=True)
    for extra in ("sslDetails { keyType }", ""):
        data = await api.ok(
            "{ devices { edges { node { endpointsDisagree endpoints { address } "
            + extra
            + " } } } }"
        )
        [edge] = data["devices"]["edges"]
        assert edge["node"]["endpointsDisagree"] is True
        assert [e["address"] for e in edge["node"]["endpoints"]] == ["127.0.0.2", "127.0.0.3"]
