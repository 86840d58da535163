"""The permission matrix: every kind of user x every operation x own / other organization type.

Security levels and users are made through the API, as an administrator would. The scene has a
CUSTOMER and a VENDOR organization, each with a contract and a PEM-sourced SSL device (so a RAW
file and Activity notes exist, with no network). For objects of a type a user may not view,
"forbidden" must be indistinguishable from "does not exist": the same null, the same 404, the
same error code, field and message as for a random unknown ID.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlmodel import Session, select

from models import (
    ApiToken,
    CategoryDefaultProduct,
    Contract,
    Device,
    Organization,
    Product,
    SecurityLevel,
    User,
)
from tests.conftest import GraphQLClient
from tests.fakes import pki
from tests.security.support import (
    CREATE_CONTRACT,
    CREATE_DEVICE,
    CREATE_LEVEL,
    CREATE_ORGANIZATION,
    CREATE_PRODUCT,
    CREATE_USER,
    FORCE_UPDATE,
    SET_ACTIVE,
    SET_DEFAULT_PRODUCT,
    SET_TRACKING,
    UPDATE_DEVICE,
    all_counts,
    codes,
    count,
    make_user,
    stored_text,
)
from tracking.core.ids import encode_id
from tracking.manage import access
from tracking.refresh.services import Services

CUSTOMER, VENDOR = "CUSTOMER", "VENDOR"
TYPES = (CUSTOMER, VENDOR)


@dataclass(frozen=True)
class Kind:
    """A kind of user: how its security level is made, and what it may do per org type."""

    level: dict[str, Any]
    views: frozenset[str] = frozenset()
    adds: frozenset[str] = frozenset()
    edits: frozenset[str] = frozenset()
    admin: bool = False


KINDS = {
    "administrator": Kind(
        level={"crm_access": True, "types": TYPES, "add": True, "edit": True, "admin": True},
        views=frozenset(TYPES),
        adds=frozenset(TYPES),
        edits=frozenset(TYPES),
        admin=True,
    ),
    "crm_customer": Kind(
        level={"crm_access": True, "types": (CUSTOMER,), "add": True, "edit": True},
        views=frozenset({CUSTOMER}),
        adds=frozenset({CUSTOMER}),
        edits=frozenset({CUSTOMER}),
    ),
    "view_only_customer": Kind(
        level={"crm_access": True, "types": (CUSTOMER,), "add": False, "edit": False},
        views=frozenset({CUSTOMER}),
    ),
    "no_crm_access": Kind(
        level={"crm_access": False, "types": TYPES, "add": True, "edit": True},
    ),
    "no_types": Kind(level={"crm_access": True, "types": (), "add": True, "edit": True}),
}

UNKNOWN = {
    "Device": encode_id("Device", 987654),
    "Organization": encode_id("Organization", 987654),
    "Contract": encode_id("Contract", 987654),
    "RawFile": encode_id("RawFile", 987654),
    "ActivityNote": encode_id("ActivityNote", 987654),
}


@dataclass
class Scene:
    admin: GraphQLClient
    user: GraphQLClient
    kind: Kind
    orgs: dict[str, str] = field(default_factory=dict)
    contracts: dict[str, str] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)


async def _scene(api: GraphQLClient, kind_name: str) -> Scene:
    kind = KINDS[kind_name]
    scene = Scene(admin=api, user=await make_user(api, kind_name, **kind.level), kind=kind)
    for org_type in TYPES:
        org = (
            await api.ok(CREATE_ORGANIZATION, input={"name": f"{org_type} Co", "type": org_type})
        )["createOrganization"]["organization"]["id"]
        scene.orgs[org_type] = org
        contract = (await api.ok(CREATE_CONTRACT, input={"organizationId": org, "name": "Main"}))[
            "createContract"
        ]["contract"]["id"]
        scene.contracts[org_type] = contract
        pem = pki.test_ca().leaf(f"{org_type.lower()}.example").pem
        payload = (
            await api.ok(
                CREATE_DEVICE,
                input={
                    "organizationId": org,
                    "contractId": contract,
                    "category": "SSL_CERTIFICATE",
                    "sslSource": pem,
                    "name": f"{org_type} certificate",
                },
            )
        )["createDevice"]
        assert payload["errors"] == [], payload
        assert payload["device"]["rawFiles"] and payload["device"]["activity"]
        scene.devices[org_type] = payload["device"]
    return scene


def _other(org_type: str) -> str:
    return VENDOR if org_type == CUSTOMER else CUSTOMER


async def _errors(client: GraphQLClient, document: str, name: str, **variables: Any) -> Any:
    payload = (await client.ok(document, **variables))[name]
    return payload["errors"]


# --- reading -----------------------------------------------------------------------------------

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Device { name }
    ... on Organization { name }
    ... on Contract { name }
    ... on RawFile { fileName }
    ... on ActivityNote { text }
  }
}"""
DEVICE = "query($id: ID!) { device(id: $id) { id name organization { id } contract { id } } }"
DEVICES = """
query($filter: DeviceFilter) {
  devices(first: 100, filter: $filter) { totalCount edges { node { id } } }
}"""
ME = """
query {
  me {
    name
    securityLevel { isAdmin crmAccess viewOrganizationTypes canAddDevices canEditDevices }
  }
}"""
ORGANIZATIONS = "query { organizations(first: 100) { edges { node { id type } } } }"


@pytest.mark.parametrize("kind_name", KINDS)
async def test_reading(api: GraphQLClient, kind_name: str) -> None:
    scene = await _scene(api, kind_name)
    user, kind = scene.user, scene.kind

    me = (await user.ok(ME))["me"]
    level = kind.level
    assert me == {
        "name": kind_name,
        "securityLevel": {
            "isAdmin": kind.admin,
            "crmAccess": level["crm_access"],
            "viewOrganizationTypes": list(level["types"]),
            "canAddDevices": level["add"],
            "canEditDevices": level["edit"],
        },
    }

    listed = (await user.ok(DEVICES))["devices"]
    expected = {scene.devices[t]["id"] for t in TYPES if t in kind.views}
    assert {e["node"]["id"] for e in listed["edges"]} == expected
    assert listed["totalCount"] == len(expected)

    organizations = (await user.ok(ORGANIZATIONS))["organizations"]["edges"]
    assert {e["node"]["id"] for e in organizations} == {
        scene.orgs[t] for t in TYPES if t in kind.views
    }

    unknown_raw = await user.http.get(
        f"/raw/{UNKNOWN['RawFile']}", headers={"Authorization": f"Bearer {user.token}"}
    )
    assert unknown_raw.status_code == 404
    for org_type in TYPES:
        visible = org_type in kind.views
        device = scene.devices[org_type]
        raw, note = device["rawFiles"][0], device["activity"][0]
        case = f"{kind_name} / {org_type}"

        by_org = await user.ok(DEVICES, filter={"organizationId": scene.orgs[org_type]})
        assert by_org["devices"]["totalCount"] == (1 if visible else 0), case

        read = (await user.ok(DEVICE, id=device["id"]))["device"]
        if visible:
            assert read == {
                "id": device["id"],
                "name": f"{org_type} certificate",
                "organization": {"id": scene.orgs[org_type]},
                "contract": {"id": scene.contracts[org_type]},
            }, case
        else:
            assert read is None, case

        objects = {
            "Device": device["id"],
            "Organization": scene.orgs[org_type],
            "Contract": scene.contracts[org_type],
            "RawFile": raw["id"],
            "ActivityNote": note["id"],
        }
        for type_name, global_id in objects.items():
            node = (await user.ok(NODE, id=global_id))["node"]
            if visible:
                assert node is not None and node["__typename"] == type_name, (case, type_name)
            else:
                assert node is None, (case, type_name)
                assert (await user.ok(NODE, id=UNKNOWN[type_name]))["node"] is None

        download = await user.http.get(
            raw["url"], headers={"Authorization": f"Bearer {user.token}"}
        )
        if visible:
            assert download.status_code == 200, case
            assert b"BEGIN CERTIFICATE" in download.content
        else:
            assert (download.status_code, download.content) == (
                unknown_raw.status_code,
                unknown_raw.content,
            ), case


# --- creating ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind_name", KINDS)
async def test_creating(api: GraphQLClient, services: Services, kind_name: str) -> None:
    scene = await _scene(api, kind_name)
    user, kind = scene.user, scene.kind

    unknown_org_contract = await _errors(
        user,
        CREATE_CONTRACT,
        "createContract",
        input={"organizationId": UNKNOWN["Organization"], "name": "X"},
    )
    unknown_org_device = await _errors(
        user,
        CREATE_DEVICE,
        "createDevice",
        input={"organizationId": UNKNOWN["Organization"], "category": "STANDARD", "name": "X"},
    )
    assert codes({"errors": unknown_org_contract}) == ["NOT_FOUND"]
    assert codes({"errors": unknown_org_device}) == ["NOT_FOUND"]

    for org_type in TYPES:
        case = f"{kind_name} / {org_type}"
        org = scene.orgs[org_type]
        before = all_counts(services)

        made = (
            await user.ok(CREATE_ORGANIZATION, input={"name": f"New {org_type}", "type": org_type})
        )["createOrganization"]
        if org_type in kind.views:
            assert made["errors"] == [] and made["organization"]["type"] == org_type, case
        else:
            assert codes(made) == ["FORBIDDEN"] and made["organization"] is None, case

        contract = (await user.ok(CREATE_CONTRACT, input={"organizationId": org, "name": "New"}))[
            "createContract"
        ]
        if org_type in kind.views:
            assert contract["errors"] == [], case
        else:
            assert contract == {"contract": None, "errors": unknown_org_contract}, case

        device = (
            await user.ok(
                CREATE_DEVICE,
                input={"organizationId": org, "category": "STANDARD", "name": "New device"},
            )
        )["createDevice"]
        if org_type in kind.adds:
            assert device["errors"] == [], case
        elif org_type in kind.views:
            assert codes(device) == ["FORBIDDEN"] and device["device"] is None, case
        else:
            assert device == {"device": None, "errors": unknown_org_device}, case

        created = sum(
            [
                org_type in kind.views,  # organization
                org_type in kind.views,  # contract
                org_type in kind.adds,  # device (and its creation note)
            ]
        )
        after = all_counts(services)
        assert after["organizations"] - before["organizations"] == (org_type in kind.views)
        assert after["contracts"] - before["contracts"] == (org_type in kind.views)
        assert after["devices"] - before["devices"] == (org_type in kind.adds)
        assert sum(after.values()) - sum(before.values()) == created + (org_type in kind.adds)


@pytest.mark.parametrize("kind_name", [k for k, v in KINDS.items() if CUSTOMER in v.adds])
async def test_a_device_cannot_take_a_contract_the_user_may_not_see(
    api: GraphQLClient, services: Services, kind_name: str
) -> None:
    """A contract of a hidden organization is "not found", exactly like an unknown one."""
    scene = await _scene(api, kind_name)
    user, kind = scene.user, scene.kind
    for contract in (UNKNOWN["Contract"], scene.contracts[VENDOR]):
        payload = (
            await user.ok(
                CREATE_DEVICE,
                input={
                    "organizationId": scene.orgs[CUSTOMER],
                    "contractId": contract,
                    "category": "STANDARD",
                    "name": "Router",
                },
            )
        )["createDevice"]
        if contract == scene.contracts[VENDOR] and VENDOR in kind.views:
            assert codes(payload) == ["CONTRACT_ORGANIZATION_MISMATCH"]
        else:
            assert payload["device"] is None
            assert payload["errors"] == [
                {"field": "contractId", "code": "NOT_FOUND", "message": "Contract not found."}
            ]
        edited = (
            await user.ok(
                UPDATE_DEVICE, id=scene.devices[CUSTOMER]["id"], input={"contractId": contract}
            )
        )["updateDevice"]
        assert edited["device"] is None
        assert codes(edited) == codes(payload)
    with Session(services.engine) as session:
        assert session.exec(select(Device).where(Device.name == "Router")).first() is None
        customer_device = session.exec(
            select(Device).where(Device.name == "CUSTOMER certificate")
        ).one()
        contract_row = session.get(Contract, customer_device.contract_id)
        assert contract_row is not None and contract_row.name == "Main"


# --- editing -----------------------------------------------------------------------------------


def _device_state(services: Services) -> dict[str, tuple[str, bool, str | None]]:
    with Session(services.engine) as session:
        return {
            d.name: (d.name, d.active, d.description) for d in session.exec(select(Device)).all()
        }


@pytest.mark.parametrize("kind_name", KINDS)
async def test_editing(api: GraphQLClient, services: Services, kind_name: str) -> None:
    scene = await _scene(api, kind_name)
    user, kind = scene.user, scene.kind
    unknown = UNKNOWN["Device"]

    unknown_update = await _errors(
        user, UPDATE_DEVICE, "updateDevice", id=unknown, input={"description": "x"}
    )
    unknown_active = await _errors(user, SET_ACTIVE, "setDeviceActive", id=unknown, active=False)
    [unknown_forced] = (await user.ok(FORCE_UPDATE, ids=[unknown]))["forceUpdate"]["results"]
    assert codes({"errors": unknown_update}) == ["NOT_FOUND"]
    assert codes({"errors": unknown_active}) == ["NOT_FOUND"]
    assert codes(unknown_forced) == ["NOT_FOUND"] and unknown_forced["device"] is None
    unknown_forced.pop("deviceId")

    # Many at once: one result per ID, in order, each with its own verdict.
    ids = [scene.devices[CUSTOMER]["id"], unknown, scene.devices[VENDOR]["id"]]
    results = (await user.ok(FORCE_UPDATE, ids=ids))["forceUpdate"]["results"]
    assert [r["deviceId"] for r in results] == ids
    verdicts = [
        [] if t in kind.edits else ["FORBIDDEN"] if t in kind.views else ["NOT_FOUND"]
        for t in (CUSTOMER, "unknown", VENDOR)
    ]
    assert [codes(r) for r in results] == verdicts
    assert [r["device"] is not None for r in results] == [
        t in kind.views for t in (CUSTOMER, "unknown", VENDOR)
    ]

    for org_type in TYPES:
        case = f"{kind_name} / {org_type}"
        device_id = scene.devices[org_type]["id"]
        name = f"{org_type} certificate"
        notes_before = all_counts(services)["activity_notes"]

        updated = (await user.ok(UPDATE_DEVICE, id=device_id, input={"description": "edited"}))[
            "updateDevice"
        ]
        active = (await user.ok(SET_ACTIVE, id=device_id, active=False))["setDeviceActive"]
        [forced] = (await user.ok(FORCE_UPDATE, ids=[device_id]))["forceUpdate"]["results"]
        assert forced["deviceId"] == device_id, case
        state = _device_state(services)[name]

        if org_type in kind.edits:
            assert updated["errors"] == [] and updated["device"]["description"] == "edited", case
            assert active["errors"] == [] and active["device"]["active"] is False, case
            assert forced["errors"] == [] and forced["device"]["id"] == device_id, case
            assert state == (name, False, "edited"), case
            continue
        assert state == (name, True, None), case
        assert all_counts(services)["activity_notes"] == notes_before, case
        if org_type in kind.views:
            for payload in (updated, active, forced):
                assert payload["errors"] == [
                    {
                        "field": None,
                        "code": "FORBIDDEN",
                        "message": "Your security level does not allow editing devices.",
                    }
                ], case
            assert updated["device"] is None and active["device"] is None, case
        else:
            assert updated == {"device": None, "errors": unknown_update}, case
            assert active == {"device": None, "errors": unknown_active}, case
            forced.pop("deviceId")
            assert forced == unknown_forced, case


# --- administration ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind_name", KINDS)
async def test_administration_is_for_administrators_only(
    api: GraphQLClient, services: Services, kind_name: str
) -> None:
    scene = await _scene(api, kind_name)
    user, kind = scene.user, scene.kind
    [system] = (await api.ok("query { products { id } }"))["products"]
    level_id = (await user.ok("query { me { securityLevel { id } } }"))["me"]["securityLevel"]["id"]
    before = all_counts(services)

    results = {
        "createProduct": (await user.ok(CREATE_PRODUCT, input={"name": "SSL Certificate"}))[
            "createProduct"
        ],
        "setDefaultProduct": (
            await user.ok(SET_DEFAULT_PRODUCT, category="SSL_CERTIFICATE", productId=system["id"])
        )["setDefaultProduct"],
        "createSecurityLevel": (
            await user.ok(
                CREATE_LEVEL,
                input={
                    "name": "Escalated",
                    "crmAccess": True,
                    "viewOrganizationTypes": list(TYPES),
                    "canAddDevices": True,
                    "canEditDevices": True,
                    "canDeleteDevices": True,
                    "isAdmin": True,
                },
            )
        )["createSecurityLevel"],
        "createUser": (
            await user.ok(CREATE_USER, input={"name": "mallory", "securityLevelId": level_id})
        )["createUser"],
    }
    tracking = await user.execute(SET_TRACKING, enabled=False)

    if kind.admin:
        for name, payload in results.items():
            assert payload["errors"] == [], name
        assert tracking == {"data": {"setTrackingEnabled": {"enabled": False}}}
        assert results["createUser"]["token"].startswith("dst_")
        return

    forbidden = {
        n: (codes(p), [v for k, v in p.items() if k != "errors"]) for n, p in results.items()
    }
    assert forbidden == {
        "createProduct": (["FORBIDDEN"], [None]),
        "setDefaultProduct": (["FORBIDDEN"], [None]),
        "createSecurityLevel": (["FORBIDDEN"], [None]),
        "createUser": (["FORBIDDEN"], [None, None]),  # no user, and above all no token
    }
    assert tracking["data"] is None
    assert [e["extensions"]["code"] for e in tracking["errors"]] == ["FORBIDDEN"]
    assert (await api.ok("query { trackingSettings { enabled } }"))["trackingSettings"] == {
        "enabled": True
    }
    assert all_counts(services) == before
    assert count(services, CategoryDefaultProduct) == 0
    with Session(services.engine) as session:
        assert session.exec(select(User).where(User.name == "mallory")).first() is None
        assert (
            session.exec(select(SecurityLevel).where(SecurityLevel.name == "Escalated")).first()
            is None
        )
        assert (
            session.exec(select(Product).where(Product.name == "SSL Certificate")).first() is None
        )


# --- tokens ------------------------------------------------------------------------------------


async def test_only_a_hash_of_each_token_is_stored(api: GraphQLClient, services: Services) -> None:
    level = (
        await api.ok(
            CREATE_LEVEL,
            input={
                "name": "Customers",
                "crmAccess": True,
                "viewOrganizationTypes": [CUSTOMER],
                "canAddDevices": True,
                "canEditDevices": True,
                "canDeleteDevices": False,
            },
        )
    )["createSecurityLevel"]["securityLevel"]["id"]
    created = (await api.ok(CREATE_USER, input={"name": "harriet", "securityLevelId": level}))[
        "createUser"
    ]
    token = created["token"]
    assert len(token) >= 40

    user = api.as_user(token)
    assert (await user.ok("query { me { id name } }"))["me"] == created["user"]

    with Session(services.engine) as session:
        rows = session.exec(select(ApiToken)).all()
    digests = {row.token_sha256 for row in rows}
    assert hashlib.sha256(token.encode()).hexdigest() in digests
    assert hashlib.sha256(b"test-admin-token").hexdigest() in digests
    stored = stored_text(services)
    for secret in (token, "test-admin-token", token[4:], token[:20]):
        assert secret not in stored
    # The token is shown once: nothing but createUser's payload has a field for it.
    schema = await api.ok("{ __schema { types { name fields { name } } } }")
    token_fields = {
        (t["name"], f["name"])
        for t in schema["__schema"]["types"]
        if not t["name"].startswith("__")
        for f in t["fields"] or ()
        if "token" in f["name"].lower()
    }
    assert token_fields == {("CreateUserPayload", "token")}


async def test_a_revoked_token_opens_nothing(api: GraphQLClient, services: Services) -> None:
    user = await make_user(api, "ivan")
    org = (await api.ok(CREATE_ORGANIZATION, input={"name": "C", "type": CUSTOMER}))[
        "createOrganization"
    ]["organization"]["id"]
    device = (
        await api.ok(
            CREATE_DEVICE,
            input={
                "organizationId": org,
                "category": "SSL_CERTIFICATE",
                "sslSource": pki.test_ca().leaf("ivan.example").pem,
            },
        )
    )["createDevice"]["device"]
    headers = {"Authorization": f"Bearer {user.token}"}
    assert (await user.http.get(device["rawFiles"][0]["url"], headers=headers)).status_code == 200

    access.revoke_tokens(services.engine, user_name="ivan")
    before = all_counts(services)
    assert (
        await user.post(CREATE_ORGANIZATION, input={"name": "D", "type": CUSTOMER})
    ).status_code == 401
    assert (await user.http.get(device["rawFiles"][0]["url"], headers=headers)).status_code == 401
    assert all_counts(services) == before
    # Other users (the administrator) keep working.
    assert (await api.ok("query { me { name } }"))["me"]["name"] == access.ADMIN_USER_NAME


async def test_tokens_are_distinct_per_user_and_bound_to_their_user(api: GraphQLClient) -> None:
    tokens = set()
    for name in ("ana", "bob", "cy"):
        client = await make_user(api, name)
        assert client.token is not None
        tokens.add(client.token)
        assert (await client.ok("query { me { name } }"))["me"]["name"] == name
    assert len(tokens) == 3
    dup = (
        await api.ok(
            CREATE_USER, input={"name": "ana", "securityLevelId": encode_id("SecurityLevel", 1)}
        )
    )["createUser"]
    assert codes(dup) == ["DUPLICATE_NAME"] and dup["token"] is None


async def test_an_organization_count_is_not_an_oracle(
    api: GraphQLClient, services: Services
) -> None:
    """Filtering devices by a hidden organization gives the same empty answer as an unknown one."""
    scene = await _scene(api, "crm_customer")
    hidden = await scene.user.ok(DEVICES, filter={"organizationId": scene.orgs[VENDOR]})
    unknown = await scene.user.ok(DEVICES, filter={"organizationId": UNKNOWN["Organization"]})
    contract = await scene.user.ok(DEVICES, filter={"contractId": scene.contracts[VENDOR]})
    assert hidden == unknown == contract == {"devices": {"totalCount": 0, "edges": []}}
    assert count(services, Organization) == 2
