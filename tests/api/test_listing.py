"""Reading devices back: the Relay connection, its filters, ``node`` and ``device``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.api import helpers, queries
from tests.conftest import GraphQLClient
from tests.fakes import pki
from tracking.core.ids import encode_id

DEVICES = """
query($first: Int, $after: String, $filter: DeviceFilter) {
  devices(first: $first, after: $after, filter: $filter) {
    totalCount
    edges { cursor node { id name category active } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Device { name }
    ... on Organization { name type }
    ... on Contract { name organization { id } }
    ... on Product { name isSystem }
  }
}"""
CREATE_DEVICE = """
mutation($input: CreateDeviceInput!) {
  createDevice(input: $input) { device { id } errors { field code message } }
}"""
DEVICE_BY_ID = "query($id: ID!) { device(id: $id) { id name } }"
SET_ACTIVE = """
mutation($id: ID!) { setDeviceActive(id: $id, active: false) { errors { code } } }"""
CREATE_LEVEL = """
mutation($input: CreateSecurityLevelInput!) {
  createSecurityLevel(input: $input) { securityLevel { id } errors { code } }
}"""
CREATE_USER = """
mutation($name: String!, $level: ID!) {
  createUser(input: {name: $name, securityLevelId: $level}) { token errors { code } }
}"""


async def _devices(api: GraphQLClient, **variables: Any) -> dict[str, Any]:
    connection: dict[str, Any] = (await api.ok(DEVICES, **variables))["devices"]
    return connection


def _names(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["name"] for edge in connection["edges"]]


async def _standard(api: GraphQLClient, org: str, name: str, **fields: Any) -> str:
    fields.update(organizationId=org, category="STANDARD", name=name)
    payload = (await api.ok(CREATE_DEVICE, input=fields))["createDevice"]
    assert payload["errors"] == []
    return str(payload["device"]["id"])


async def _contract(api: GraphQLClient, org: str, name: str) -> str:
    payload = (await api.ok(queries.CREATE_CONTRACT, org=org, name=name))["createContract"]
    assert payload["errors"] == []
    return str(payload["contract"]["id"])


def _pem_expiring(cn: str, days_from_now: int) -> str:
    """A PEM certificate whose validity ends ``days_from_now`` days from now (may be < 0)."""
    not_after = pki.NOW + dt.timedelta(days=days_from_now)
    return pki.test_ca().leaf(cn, not_before=not_after - dt.timedelta(days=90), days=90).pem


# Pagination --------------------------------------------------------------------------


async def test_first_and_after_page_through_every_device_once(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    created = [await _standard(api, org, f"Device {i:02d}") for i in range(45)]

    pages = []
    after = None
    while True:
        page = await _devices(api, first=20, after=after)
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert [len(p["edges"]) for p in pages] == [20, 20, 5]
    assert [p["totalCount"] for p in pages] == [45, 45, 45]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    ids = [edge["node"]["id"] for page in pages for edge in page["edges"]]
    assert ids == created  # creation order, nothing repeated or skipped
    cursors = [edge["cursor"] for page in pages for edge in page["edges"]]
    assert len(set(cursors)) == 45
    for page in pages:
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]

    # Resuming from any cursor gives what follows it.
    middle = await _devices(api, first=3, after=cursors[9])
    assert [e["node"]["id"] for e in middle["edges"]] == created[10:13]
    past_the_end = await _devices(api, first=10, after=cursors[-1])
    assert past_the_end["edges"] == []
    assert past_the_end["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }
    assert past_the_end["totalCount"] == 45


async def test_page_size_defaults_and_bounds(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    for i in range(25):
        await _standard(api, org, f"Device {i:02d}")

    default = await _devices(api)
    assert len(default["edges"]) == 20
    assert default["pageInfo"]["hasNextPage"] is True
    everything = await _devices(api, first=100)
    assert len(everything["edges"]) == 25
    assert everything["pageInfo"]["hasNextPage"] is False
    exact = await _devices(api, first=25)
    assert exact["pageInfo"]["hasNextPage"] is False
    none = await _devices(api, first=0)
    assert none["edges"] == []
    assert none["totalCount"] == 25


async def test_a_page_size_out_of_bounds_is_a_graphql_error(api: GraphQLClient) -> None:
    for first in (101, 1000, -1):
        body = await api.execute(DEVICES, first=first)
        assert body["data"] is None, first
        [error] = body["errors"]
        assert error["extensions"]["code"] == "INVALID_PAGE_SIZE"
        assert "100" in error["message"]


async def test_a_foreign_cursor_is_a_graphql_error(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    await _standard(api, org, "Router")
    for after in ("junk", "", encode_id("Device", 1), encode_id("cursor", 1) + "=="):
        body = await api.execute(DEVICES, after=after)
        assert body["data"] is None, after
        assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR", after


# Filters -----------------------------------------------------------------------------


async def _inventory(api: GraphQLClient) -> dict[str, str]:
    """Two organizations, two contracts, devices of each category, active or not."""
    acme = await helpers.organization(api, "Acme")
    globex = await helpers.organization(api, "Globex")
    hosting = await _contract(api, acme, "Hosting")
    support = await _contract(api, acme, "Support")
    ids = {"acme": acme, "globex": globex, "hosting": hosting, "support": support}
    ids["router"] = await _standard(api, acme, "router", contractId=hosting)
    ids["switch"] = await _standard(api, acme, "switch", contractId=support)
    ids["printer"] = await _standard(api, globex, "printer")
    for name, days in (("soon", 10), ("later", 60), ("gone", -5), ("far", 400)):
        device = await helpers.ssl_device(
            api,
            acme if name != "far" else globex,
            _pem_expiring(f"{name}.example", days),
            name=name,
            **({"contractId": hosting} if name == "soon" else {}),
        )
        ids[name] = device["id"]
    wildcard = await helpers.create_device(
        api, organizationId=globex, category="DOMAIN", domain="*.example.org", name="wildcard"
    )
    assert wildcard["errors"] == []
    ids["wildcard"] = wildcard["device"]["id"]
    for name in ("switch", "later"):
        assert (await api.ok(SET_ACTIVE, id=ids[name]))["setDeviceActive"]["errors"] == []
    return ids


async def test_filters_select_what_they_say(api: GraphQLClient) -> None:
    ids = await _inventory(api)
    soon = (pki.NOW + dt.timedelta(days=30)).isoformat()
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, ["router", "switch", "printer", "soon", "later", "gone", "far", "wildcard"]),
        ({"organizationId": ids["acme"]}, ["router", "switch", "soon", "later", "gone"]),
        ({"organizationId": ids["globex"]}, ["printer", "far", "wildcard"]),
        ({"contractId": ids["hosting"]}, ["router", "soon"]),
        ({"contractId": ids["support"]}, ["switch"]),
        ({"category": "STANDARD"}, ["router", "switch", "printer"]),
        ({"category": "SSL_CERTIFICATE"}, ["soon", "later", "gone", "far"]),
        ({"category": "DOMAIN"}, ["wildcard"]),
        ({"active": False}, ["switch", "later"]),
        ({"active": True}, ["router", "printer", "soon", "gone", "far", "wildcard"]),
        ({"expiringBefore": soon}, ["soon", "gone"]),
        ({"expiringBefore": soon, "active": True, "organizationId": ids["acme"]}, ["soon", "gone"]),
        ({"organizationId": ids["globex"], "contractId": ids["hosting"]}, []),
        ({"category": "SSL_CERTIFICATE", "active": False}, ["later"]),
    ]
    for filter, expected in cases:
        connection = await _devices(api, filter=filter)
        assert _names(connection) == expected, filter
        assert connection["totalCount"] == len(expected), filter


async def test_expiring_before_accepts_any_offset_and_a_missing_one_as_utc(
    api: GraphQLClient,
) -> None:
    org = await helpers.organization(api)
    pem = _pem_expiring("edge.example", 10)
    device = await helpers.ssl_device(api, org, pem, name="edge")
    valid_until = dt.datetime.fromisoformat(device["sslDetails"]["validUntil"])
    assert valid_until.utcoffset() == dt.timedelta(0)

    just_after = valid_until + dt.timedelta(seconds=1)
    in_paris = just_after.astimezone(dt.timezone(dt.timedelta(hours=2)))
    naive = just_after.replace(tzinfo=None)
    for moment in (just_after.isoformat(), in_paris.isoformat(), naive.isoformat()):
        assert _names(await _devices(api, filter={"expiringBefore": moment})) == ["edge"], moment
    exactly = valid_until.isoformat()
    assert _names(await _devices(api, filter={"expiringBefore": exactly})) == []


async def test_an_unknown_id_in_a_filter_matches_nothing(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    await _contract(api, org, "Hosting")
    await _standard(api, org, "Router")
    for filter in (
        {"organizationId": encode_id("Organization", 999)},
        {"organizationId": "junk"},
        {"contractId": encode_id("Organization", 1)},
        {"organizationId": encode_id("Contract", 1)},
    ):
        connection = await _devices(api, filter=filter)
        assert connection["edges"] == [], filter
        assert connection["totalCount"] == 0, filter


async def test_pagination_and_filters_combine(api: GraphQLClient) -> None:
    acme = await helpers.organization(api, "Acme")
    globex = await helpers.organization(api, "Globex")
    for i in range(6):
        await _standard(api, acme, f"acme {i}")
        await _standard(api, globex, f"globex {i}")
    first = await _devices(api, first=4, filter={"organizationId": globex})
    assert _names(first) == [f"globex {i}" for i in range(4)]
    assert first["totalCount"] == 6
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await _devices(
        api, first=4, after=first["pageInfo"]["endCursor"], filter={"organizationId": globex}
    )
    assert _names(rest) == ["globex 4", "globex 5"]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_a_user_lists_only_devices_of_organizations_they_may_see(
    api: GraphQLClient,
) -> None:
    customer = await helpers.organization(api, "Customer Co", "CUSTOMER")
    vendor = await helpers.organization(api, "Vendor Co", "VENDOR")
    await _standard(api, customer, "seen")
    hidden = await _standard(api, vendor, "hidden")
    level = (
        await api.ok(
            CREATE_LEVEL,
            input={
                "name": "Customers only",
                "crmAccess": True,
                "viewOrganizationTypes": ["CUSTOMER"],
                "canAddDevices": True,
                "canEditDevices": True,
                "canDeleteDevices": False,
            },
        )
    )["createSecurityLevel"]["securityLevel"]["id"]
    token = (await api.ok(CREATE_USER, name="carol", level=level))["createUser"]["token"]
    carol = api.as_user(token)

    everything = await _devices(carol)
    assert _names(everything) == ["seen"]
    assert everything["totalCount"] == 1
    by_hidden_org = await _devices(carol, filter={"organizationId": vendor})
    assert (by_hidden_org["edges"], by_hidden_org["totalCount"]) == ([], 0)
    assert (await carol.ok(DEVICE_BY_ID, id=hidden))["device"] is None
    assert (await carol.ok(NODE, id=hidden))["node"] is None
    assert (await carol.ok(NODE, id=vendor))["node"] is None


async def test_a_user_without_crm_access_sees_no_device(api: GraphQLClient) -> None:
    org = await helpers.organization(api, "Customer Co", "CUSTOMER")
    device = await _standard(api, org, "seen")
    level = (
        await api.ok(
            CREATE_LEVEL,
            input={
                "name": "No CRM",
                "crmAccess": False,
                "viewOrganizationTypes": ["CUSTOMER"],
                "canAddDevices": False,
                "canEditDevices": False,
                "canDeleteDevices": False,
            },
        )
    )["createSecurityLevel"]["securityLevel"]["id"]
    token = (await api.ok(CREATE_USER, name="dave", level=level))["createUser"]["token"]
    dave = api.as_user(token)
    assert (await _devices(dave))["totalCount"] == 0
    assert (await dave.ok(DEVICE_BY_ID, id=device))["device"] is None


# node and device ---------------------------------------------------------------------


async def test_node_resolves_every_kind_of_object(api: GraphQLClient) -> None:
    org = await helpers.organization(api, "Acme", "PARTNER")
    contract = await _contract(api, org, "Hosting")
    device = await _standard(api, org, "Router", contractId=contract)
    [product] = (await api.ok("query { products { id } }"))["products"]

    assert (await api.ok(NODE, id=device))["node"] == {
        "__typename": "Device",
        "id": device,
        "name": "Router",
    }
    assert (await api.ok(NODE, id=org))["node"] == {
        "__typename": "Organization",
        "id": org,
        "name": "Acme",
        "type": "PARTNER",
    }
    assert (await api.ok(NODE, id=contract))["node"] == {
        "__typename": "Contract",
        "id": contract,
        "name": "Hosting",
        "organization": {"id": org},
    }
    assert (await api.ok(NODE, id=product["id"]))["node"] == {
        "__typename": "Product",
        "id": product["id"],
        "name": "None",
        "isSystem": True,
    }
    assert (await api.ok(DEVICE_BY_ID, id=device))["device"] == {"id": device, "name": "Router"}


GARBAGE_IDS = [
    "",
    "junk",
    "!!!!",
    encode_id("Device", 999),
    encode_id("Nope", 1),
    encode_id("Device", 0),
    "RGV2aWNlOi0x",  # "Device:-1"
    "RGV2aWNlOjE=" * 30,  # far too long
    "RGV2aWNlOjHvv70=",  # "Device:1\ufffd"
    "\u0000",
]


async def test_garbage_ids_resolve_to_null(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    await _standard(api, org, "Router")
    for garbage in GARBAGE_IDS:
        assert (await api.ok(NODE, id=garbage))["node"] is None, garbage
        assert (await api.ok(DEVICE_BY_ID, id=garbage))["device"] is None, garbage


async def test_device_with_another_types_id_is_null(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    contract = await _contract(api, org, "Hosting")
    device = await _standard(api, org, "Router")
    assert (await api.ok(DEVICE_BY_ID, id=device))["device"] is not None
    [product] = (await api.ok("query { products { id } }"))["products"]
    for other in (org, contract, product["id"], encode_id("Organization", 1)):
        assert (await api.ok(DEVICE_BY_ID, id=other))["device"] is None


NODE_EXTRA = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on RawFile { fileName url }
    ... on ActivityNote { text }
    ... on SecurityLevel { name isAdmin }
    ... on User { name securityLevel { name } }
  }
}"""


async def test_node_refetches_raw_files_notes_users_and_levels(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, pki.test_ca().leaf("node.example").pem)
    [raw] = device["rawFiles"]
    note = device["activity"][0]
    me = (await api.ok("query { me { id name securityLevel { id name isAdmin } } }"))["me"]

    assert (await api.ok(NODE_EXTRA, id=raw["id"]))["node"] == {
        "__typename": "RawFile",
        "id": raw["id"],
        "fileName": raw["fileName"],
        "url": raw["url"],
    }
    assert (await api.ok(NODE_EXTRA, id=note["id"]))["node"] == {
        "__typename": "ActivityNote",
        "id": note["id"],
        "text": note["text"],
    }
    level = me["securityLevel"]
    assert (await api.ok(NODE_EXTRA, id=level["id"]))["node"] == {
        "__typename": "SecurityLevel",
        "id": level["id"],
        "name": level["name"],
        "isAdmin": True,
    }
    assert (await api.ok(NODE_EXTRA, id=me["id"]))["node"] == {
        "__typename": "User",
        "id": me["id"],
        "name": me["name"],
        "securityLevel": {"name": level["name"]},
    }


async def test_node_hides_what_a_user_may_not_see(api: GraphQLClient) -> None:
    vendor = await helpers.organization(api, "Vendor Co", "VENDOR")
    device = await helpers.ssl_device(api, vendor, pki.test_ca().leaf("hidden.example").pem)
    admin = (await api.ok("query { me { id securityLevel { id } } }"))["me"]
    level = (
        await api.ok(
            CREATE_LEVEL,
            input={
                "name": "Customers only",
                "crmAccess": True,
                "viewOrganizationTypes": ["CUSTOMER"],
                "canAddDevices": True,
                "canEditDevices": True,
                "canDeleteDevices": False,
            },
        )
    )["createSecurityLevel"]["securityLevel"]["id"]
    created = (await api.ok(CREATE_USER, name="gina", level=level))["createUser"]
    gina = api.as_user(created["token"])
    me = (await gina.ok("query { me { id securityLevel { id } } }"))["me"]

    hidden = [
        device["id"],
        device["rawFiles"][0]["id"],
        device["activity"][0]["id"],
        admin["id"],
        admin["securityLevel"]["id"],
    ]
    for global_id in hidden:
        assert (await gina.ok(NODE_EXTRA, id=global_id))["node"] is None, global_id
    assert (await gina.ok(NODE_EXTRA, id=me["id"]))["node"]["__typename"] == "User"
    own_level = (await gina.ok(NODE_EXTRA, id=level))["node"]
    assert own_level["name"] == "Customers only"
    # The administrator sees the new user and their level.
    assert (await api.ok(NODE_EXTRA, id=me["id"]))["node"]["name"] == "gina"
    assert (await api.ok(NODE_EXTRA, id=me["securityLevel"]["id"]))["node"]["isAdmin"] is False
