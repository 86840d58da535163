"""Hostile input: every text field and ID of every mutation, cursors, filters, and the limits
that keep one request (or one user) from taking the service down.

Every hostile value must end in a clear error - a GraphQL error, a UserError with a stable
code, or a 4xx - never a 500 or an INTERNAL_ERROR, and must save nothing (every row of every
table is compared before and after).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from api.app import MAX_BODY_BYTES, create_app
from models import ActivityNote, Organization
from tests.conftest import ADMIN_TOKEN, GraphQLClient, api_client, services_with
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
    UPDATE_DEVICE,
    all_counts,
    count,
    make_user,
    stored_text,
)
from tracking.core.errors import ErrorCode
from tracking.core.ids import encode_id
from tracking.manage import inventory
from tracking.manage import queries as tracking_queries
from tracking.refresh.services import Services

STABLE_CODES = {code.value for code in ErrorCode}

HOSTILE_STRINGS: dict[str, str] = {
    "10 kB": "x" * 10_240,
    "1 MB": "y" * 1_000_000,
    "control": "bell\x07and\x1b[31mescape",
    "C1 control": "next\x85line\x9b",
    "NUL": "nul\x00byte",
    "bidi override": "invoice\u202etxt.exe",
    "bidi isolate": "left\u2067right\u2069",
    "lone surrogate": "half \ud800 pair",
    "low surrogate": "\udfff",
}
WRONG_TYPES: dict[str, Any] = {
    "number": 123,
    "float": 1.5,
    "boolean": True,
    "object": {"name": "x"},
    "list": ["x"],
}
PEM_LIKE = "-----BEGIN CERTIFICATE-----\n" + "A" * 1_000_000 + "\n-----END CERTIFICATE-----\n"


@dataclass
class Target:
    """What the hostile values are aimed at: an organization and devices of each kind."""

    organization: str
    contract: str
    standard: str
    ssl: str
    domain: str
    level: str
    product: str


@pytest.fixture
async def target(api: GraphQLClient) -> Target:
    org = (await api.ok(CREATE_ORGANIZATION, input={"name": "Acme", "type": "CUSTOMER"}))[
        "createOrganization"
    ]["organization"]["id"]
    contract = (await api.ok(CREATE_CONTRACT, input={"organizationId": org, "name": "Main"}))[
        "createContract"
    ]["contract"]["id"]

    async def device(**fields: Any) -> str:
        payload = (await api.ok(CREATE_DEVICE, input={"organizationId": org, **fields}))[
            "createDevice"
        ]
        assert payload["errors"] == [], payload
        return str(payload["device"]["id"])

    # With tracking off, the domain is saved without any look-up: no network in this fixture.
    await api.ok("mutation { setTrackingEnabled(enabled: false) { enabled } }")
    domain = await device(category="DOMAIN", domain="hostile-input.test")
    await api.ok("mutation { setTrackingEnabled(enabled: true) { enabled } }")
    level = (
        await api.ok(
            CREATE_LEVEL,
            input={
                "name": "Staff",
                "crmAccess": True,
                "viewOrganizationTypes": ["CUSTOMER"],
                "canAddDevices": True,
                "canEditDevices": True,
                "canDeleteDevices": False,
            },
        )
    )["createSecurityLevel"]["securityLevel"]["id"]
    product = (await api.ok(CREATE_PRODUCT, input={"name": "Widget"}))["createProduct"]["product"][
        "id"
    ]
    return Target(
        organization=org,
        contract=contract,
        standard=await device(category="STANDARD", name="Router"),
        ssl=await device(
            category="SSL_CERTIFICATE", sslSource=pki.test_ca().leaf("hostile.example").pem
        ),
        domain=domain,
        level=level,
        product=product,
    )


@dataclass(frozen=True)
class Site:
    """One place a value goes: the document, its variables for a value, the answer's field."""

    document: str
    variables: Callable[[Target, Any], dict[str, Any]]
    field: str
    is_id: bool = False


def _device(t: Target, **fields: Any) -> dict[str, Any]:
    return {"input": {"organizationId": t.organization, **fields}}


SITES: dict[str, Site] = {
    "createOrganization.name": Site(
        CREATE_ORGANIZATION,
        lambda t, v: {"input": {"name": v, "type": "CUSTOMER"}},
        "createOrganization",
    ),
    "createContract.name": Site(
        CREATE_CONTRACT,
        lambda t, v: {"input": {"organizationId": t.organization, "name": v}},
        "createContract",
    ),
    "createContract.organizationId": Site(
        CREATE_CONTRACT,
        lambda t, v: {"input": {"organizationId": v, "name": "Support"}},
        "createContract",
        is_id=True,
    ),
    "createProduct.name": Site(
        CREATE_PRODUCT, lambda t, v: {"input": {"name": v}}, "createProduct"
    ),
    "setDefaultProduct.productId": Site(
        SET_DEFAULT_PRODUCT,
        lambda t, v: {"category": "STANDARD", "productId": v},
        "setDefaultProduct",
        is_id=True,
    ),
    "createDevice.name": Site(
        CREATE_DEVICE, lambda t, v: _device(t, category="STANDARD", name=v), "createDevice"
    ),
    "createDevice.description": Site(
        CREATE_DEVICE,
        lambda t, v: _device(t, category="STANDARD", name="Switch", description=v),
        "createDevice",
    ),
    "createDevice.sslSource": Site(
        CREATE_DEVICE,
        lambda t, v: _device(t, category="SSL_CERTIFICATE", sslSource=v),
        "createDevice",
    ),
    "createDevice.domain": Site(
        CREATE_DEVICE, lambda t, v: _device(t, category="DOMAIN", domain=v), "createDevice"
    ),
    "createDevice.organizationId": Site(
        CREATE_DEVICE,
        lambda t, v: {"input": {"organizationId": v, "category": "STANDARD", "name": "Hub"}},
        "createDevice",
        is_id=True,
    ),
    "createDevice.contractId": Site(
        CREATE_DEVICE,
        lambda t, v: _device(t, category="STANDARD", name="Hub", contractId=v),
        "createDevice",
        is_id=True,
    ),
    "createDevice.productId": Site(
        CREATE_DEVICE,
        lambda t, v: _device(t, category="STANDARD", name="Hub", productId=v),
        "createDevice",
        is_id=True,
    ),
    "updateDevice.id": Site(
        UPDATE_DEVICE, lambda t, v: {"id": v, "input": {"name": "Renamed"}}, "updateDevice", True
    ),
    "updateDevice.name": Site(
        UPDATE_DEVICE, lambda t, v: {"id": t.standard, "input": {"name": v}}, "updateDevice"
    ),
    "updateDevice.description": Site(
        UPDATE_DEVICE,
        lambda t, v: {"id": t.standard, "input": {"description": v}},
        "updateDevice",
    ),
    "updateDevice.sslSource": Site(
        UPDATE_DEVICE, lambda t, v: {"id": t.ssl, "input": {"sslSource": v}}, "updateDevice"
    ),
    "updateDevice.domain": Site(
        UPDATE_DEVICE, lambda t, v: {"id": t.domain, "input": {"domain": v}}, "updateDevice"
    ),
    "updateDevice.registrar": Site(
        UPDATE_DEVICE, lambda t, v: {"id": t.domain, "input": {"registrar": v}}, "updateDevice"
    ),
    "updateDevice.productId": Site(
        UPDATE_DEVICE,
        lambda t, v: {"id": t.standard, "input": {"productId": v}},
        "updateDevice",
        is_id=True,
    ),
    "updateDevice.contractId": Site(
        UPDATE_DEVICE,
        lambda t, v: {"id": t.standard, "input": {"contractId": v}},
        "updateDevice",
        is_id=True,
    ),
    "setDeviceActive.id": Site(
        SET_ACTIVE, lambda t, v: {"id": v, "active": False}, "setDeviceActive", is_id=True
    ),
    "forceUpdate.ids": Site(FORCE_UPDATE, lambda t, v: {"ids": [v]}, "forceUpdate", is_id=True),
    "createSecurityLevel.name": Site(
        CREATE_LEVEL,
        lambda t, v: {
            "input": {
                "name": v,
                "crmAccess": True,
                "viewOrganizationTypes": ["CUSTOMER"],
                "canAddDevices": False,
                "canEditDevices": False,
                "canDeleteDevices": False,
            }
        },
        "createSecurityLevel",
    ),
    "createUser.name": Site(
        CREATE_USER,
        lambda t, v: {"input": {"name": v, "securityLevelId": t.level}},
        "createUser",
    ),
    "createUser.securityLevelId": Site(
        CREATE_USER,
        lambda t, v: {"input": {"name": "zed", "securityLevelId": v}},
        "createUser",
        is_id=True,
    ),
}

QUERY_SITES: dict[str, Site] = {
    "device(id)": Site("query($v: ID!) { device(id: $v) { id } }", lambda t, v: {"v": v}, "device"),
    "node(id)": Site("query($v: ID!) { node(id: $v) { id } }", lambda t, v: {"v": v}, "node"),
    "devices(after)": Site(
        "query($v: String) { devices(after: $v) { totalCount } }", lambda t, v: {"v": v}, "devices"
    ),
    "organizations(after)": Site(
        "query($v: String) { organizations(after: $v) { edges { cursor } } }",
        lambda t, v: {"v": v},
        "organizations",
    ),
    "devices(filter.organizationId)": Site(
        "query($v: ID) { devices(filter: {organizationId: $v}) { totalCount } }",
        lambda t, v: {"v": v},
        "devices",
    ),
    "devices(filter.contractId)": Site(
        "query($v: DeviceFilter) { devices(filter: $v) { totalCount } }",
        lambda t, v: {"v": {"contractId": v}},
        "devices",
    ),
}


async def _post(api: GraphQLClient, document: str, variables: dict[str, Any]) -> httpx.Response:
    """Posted as ASCII JSON, so that lone surrogates travel as ``\\ud800`` escapes."""
    body = json.dumps({"query": document, "variables": variables}).encode("ascii")
    return await api.http.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )


def _assert_clear_refusal(response: httpx.Response, field: str, case: str) -> None:
    """A 4xx with a message, or a GraphQL error, or a payload/result with stable error codes."""
    assert response.status_code in (200, 400), case
    assert "Traceback" not in response.text and "INTERNAL_ERROR" not in response.text, case
    body = response.json()
    if response.status_code == 400 or body.get("errors"):
        assert body["errors"] and all(e["message"] for e in body["errors"]), case
        assert not (body.get("data") or {}).get(field), case
        return
    payload = body["data"][field]
    if payload is None:  # device(id) / node(id): unknown
        return
    if "results" in payload:  # forceUpdate: one result per ID, which is not found
        [result] = payload["results"]
        assert [e["code"] for e in result["errors"]] == ["NOT_FOUND"], case
        assert result["device"] is None and result["changed"] is False, case
        return
    if "totalCount" in payload:  # a filter by an ID that is no one's matches nothing
        assert payload["totalCount"] == 0, case
        return
    assert payload["errors"], (case, payload)
    assert {e["code"] for e in payload["errors"]} <= STABLE_CODES, case
    assert all(v is None for k, v in payload.items() if k not in ("errors", "deviceId")), case


def _values(site: Site) -> dict[str, Any]:
    values: dict[str, Any] = {**HOSTILE_STRINGS, **WRONG_TYPES}
    if site.is_id:
        values.pop("number")  # an Int is a valid ID literal: it is simply no one's ID
        values["number id"] = 123  # ... and must be found by nothing
        values["no such type"] = encode_id("Nope", 1)
        values["huge pk"] = encode_id("Device", 10**30)
        values["negative pk"] = "RGV2aWNlOi0x"  # "Device:-1"
    return values


# One test per mutation (its fields together), so the scene is built once per mutation.
MUTATIONS = sorted({name.split(".")[0] for name in SITES})


@pytest.mark.parametrize("mutation", MUTATIONS)
async def test_hostile_mutation_input_is_refused_and_saves_nothing(
    api: GraphQLClient, services: Services, target: Target, mutation: str
) -> None:
    before = stored_text(services)
    for site_name, site in SITES.items():
        if site_name.split(".")[0] != mutation:
            continue
        values = _values(site)
        if site.is_id:  # an existing object, but of a type no mutation takes an ID of
            values["foreign type"] = encode_id("ActivityNote", 1)
        if site_name.endswith("sslSource"):
            values["PEM-like 1 MB"] = PEM_LIKE
        for label, value in values.items():
            response = await _post(api, site.document, site.variables(target, value))
            _assert_clear_refusal(response, site.field, f"{site_name} <- {label}")
    assert stored_text(services) == before


async def test_hostile_ids_cursors_and_filters_are_harmless(
    api: GraphQLClient, services: Services, target: Target
) -> None:
    before = stored_text(services)
    for site_name, site in QUERY_SITES.items():
        for label, value in _values(Site("", site.variables, site.field, is_id=True)).items():
            response = await _post(api, site.document, site.variables(target, value))
            _assert_clear_refusal(response, site.field, f"{site_name} <- {label}")
    assert stored_text(services) == before


async def test_hostile_enum_and_datetime_values_are_graphql_errors(
    api: GraphQLClient, services: Services, target: Target
) -> None:
    before = stored_text(services)
    cases = [
        (CREATE_ORGANIZATION, {"input": {"name": "Acme 2", "type": "CUSTOMER\u202e"}}),
        (CREATE_ORGANIZATION, {"input": {"name": "Acme 2", "type": "customer"}}),
        (CREATE_ORGANIZATION, {"input": {"name": "Acme 2", "type": "\ud800"}}),
        (UPDATE_DEVICE, {"id": target.domain, "input": {"expiresAt": "\x00"}}),
        (UPDATE_DEVICE, {"id": target.domain, "input": {"expiresAt": "x" * 10_240}}),
        (UPDATE_DEVICE, {"id": target.domain, "input": {"expiresAt": "9999-99-99T99:99:99"}}),
        (UPDATE_DEVICE, {"id": target.domain, "input": {"expiresAt": 1700000000}}),
        (UPDATE_DEVICE, {"id": target.domain, "input": {"category": "DOMAIN; DROP TABLE"}}),
        (SET_DEFAULT_PRODUCT, {"category": {"x": 1}, "productId": target.product}),
        ("query($f: DeviceFilter) { devices(filter: $f) { totalCount } }", {"f": "x"}),
        (
            "query($f: DeviceFilter) { devices(filter: $f) { totalCount } }",
            {"f": {"expiringBefore": "\ud800"}},
        ),
        ("query($n: Int) { devices(first: $n) { totalCount } }", {"n": 2**40}),
        ("query($n: Int) { devices(first: $n) { totalCount } }", {"n": "1"}),
    ]
    for document, variables in cases:
        response = await _post(api, document, variables)
        body = response.json()
        assert response.status_code in (200, 400), variables
        assert body.get("data") is None and body["errors"], variables
        assert "INTERNAL_ERROR" not in response.text and "Traceback" not in response.text
    assert stored_text(services) == before


async def test_bodies_that_are_not_one_graphql_request_are_400(
    api: GraphQLClient, services: Services
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    mutation = (
        'mutation { createOrganization(input: {name: "X", type: CUSTOMER}) { errors { code } } }'
    )
    bodies = {
        "a string": b'"query"',
        "null": b"null",
        "a number": b"123",
        "a batch of mutations": json.dumps([{"query": mutation}, {"query": mutation}]).encode(),
        "not JSON": b"\xff\xfe{",
        "empty": b"",
        "query not a string": b'{"query": 5}',
        "variables a list": json.dumps({"query": mutation, "variables": [1]}).encode(),
        "deeply nested JSON": b'{"query": "{ me { id } }", "variables": {"a": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}}",
        "surrogate in operationName": b'{"query": "{ me { id } }", "operationName": "\\ud800"}',
        "surrogate in a key": b'{"query": "{ me { id } }", "variables": {"\\udc00": 1}}',
        "unknown operationName": json.dumps(
            {"query": mutation, "operationName": "x" * 10_000}
        ).encode(),
    }
    for label, body in bodies.items():
        response = await api.http.post("/graphql", content=body, headers=headers)
        assert response.status_code == 400, label
        assert "Traceback" not in response.text, label
    assert count(services, Organization) == 0
    # A valid surrogate pair (an emoji) is ordinary text.
    ok = await api.http.post(
        "/graphql",
        content=b'{"query": "{ me { name } }", "variables": {"note": "\\ud83d\\ude00"}}',
        headers=headers,
    )
    assert ok.status_code == 200 and ok.json() == {"data": {"me": {"name": "admin"}}}


async def test_a_valid_name_with_right_to_left_text_is_kept(api: GraphQLClient) -> None:
    """Refusing bidi overrides must not refuse right-to-left scripts or their implicit marks."""
    for name in (
        "\u0634\u0631\u0643\u0629 \u0627\u0644\u0645\u062b\u0627\u0644",
        "Acme \u200f(\u05d0)",
    ):
        payload = (await api.ok(CREATE_ORGANIZATION, input={"name": name, "type": "CUSTOMER"}))[
            "createOrganization"
        ]
        assert payload["errors"] == [] and payload["organization"]["name"] == name


# --- GraphQL hardening -------------------------------------------------------------------------


async def test_depth_through_fragments_is_limited(api: GraphQLClient) -> None:
    fragments = "\n".join(
        f"fragment F{i} on Device {{ parent {{ ...F{i + 1} }} }}" for i in range(14)
    )
    query = (
        "{ devices { edges { node { ...F0 } } } }\n"
        f"{fragments}\nfragment F14 on Device {{ id }}"
    )
    body = await api.execute(query)
    assert body["data"] is None
    assert "depth" in body["errors"][0]["message"]


async def test_aliased_mutations_are_limited_and_run_none(
    api: GraphQLClient, services: Services
) -> None:
    aliased = " ".join(
        f'm{i}: createOrganization(input: {{name: "Org {i}", type: CUSTOMER}}) '
        "{ errors { code } }"
        for i in range(51)
    )
    body = await api.execute(f"mutation {{ {aliased} }}")
    assert body["data"] is None and "aliases" in body["errors"][0]["message"]
    assert count(services, Organization) == 0


async def test_page_sizes_are_bounded(api: GraphQLClient, target: Target) -> None:
    for query in (
        "{ devices(first: 1000) { totalCount } }",
        "{ organizations(first: 1000) { edges { cursor } } }",
        "{ devices(first: -5) { totalCount } }",
    ):
        body = await api.execute(query)
        assert body["data"] is None, query
        assert body["errors"][0]["extensions"]["code"] == "INVALID_PAGE_SIZE", query
    notes = await api.execute(
        "query($id: ID!) { device(id: $id) { activity(first: 100000) { id } } }", id=target.ssl
    )
    assert 0 < len(notes["data"]["device"]["activity"]) <= 100


async def test_a_huge_variable_is_refused_by_the_body_limit(
    api: GraphQLClient, services: Services
) -> None:
    response = await api.post(
        CREATE_ORGANIZATION, input={"name": "z" * (2 * MAX_BODY_BYTES), "type": "CUSTOMER"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert count(services, Organization) == 0


INTROSPECTION = "{ __schema { queryType { name } types { name } } }"


async def test_introspection_needs_a_token(api: GraphQLClient) -> None:
    anonymous = await api.http.post("/graphql", json={"query": INTROSPECTION})
    assert anonymous.status_code == 401
    assert "__schema" not in anonymous.text and "Device" not in anonymous.text
    wrong = await api.http.post(
        "/graphql", json={"query": INTROSPECTION}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    schema = (await api.ok(INTROSPECTION))["__schema"]
    assert schema["queryType"] == {"name": "Query"}
    assert "Device" in {t["name"] for t in schema["types"]}


async def test_nested_introspection_is_limited(api: GraphQLClient) -> None:
    """Introspection escapes the depth limit, so its own limit must hold (fields of types of
    fields... grows exponentially)."""
    nested = "fields { type { " * 5 + "name" + " } }" * 5
    body = await api.execute(f"{{ __schema {{ types {{ {nested} }} }} }}")
    assert body["data"] is None
    assert "introspection" in body["errors"][0]["message"].lower()


_MASKED = re.compile(r"^Internal error \(reference ([0-9a-f]{12})\)\.$")


async def test_internal_errors_are_masked_and_logged(
    api: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("db password=hunter2 at /srv/dstrack/secret.py line 42")

    monkeypatch.setattr(tracking_queries, "list_devices", explode)
    with caplog.at_level(logging.ERROR, logger="dstrack.api"):
        response = await api.post("{ devices { totalCount } }")
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    match = _MASKED.match(error["message"])
    assert match is not None, error
    assert error["extensions"] == {"code": "INTERNAL_ERROR", "reference": match[1]}
    for leak in ("hunter2", "secret.py", "RuntimeError", "Traceback", "password"):
        assert leak not in response.text
    # Operators find the cause in the log by its reference.
    [record] = [r for r in caplog.records if match[1] in r.getMessage()]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])


async def test_internal_errors_in_mutations_are_masked_too(
    api: GraphQLClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise KeyError("organizations_pkey secret")

    monkeypatch.setattr(inventory, "create_organization", explode)
    body = await api.execute(CREATE_ORGANIZATION, input={"name": "Acme", "type": "CUSTOMER"})
    [error] = body["errors"]
    assert _MASKED.match(error["message"]) and "secret" not in json.dumps(body)


async def test_a_crash_outside_graphql_is_a_bare_500(
    services: Services, monkeypatch: pytest.MonkeyPatch, target: Target
) -> None:
    """E.g. the RAW store failing: a plain 500, with no traceback or exception text."""

    def explode(sha256: str) -> bytes:
        raise OSError("disk /var/lib/dstrack/raw/ab/cd unreadable")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(
            app=create_app(services=services), raise_app_exceptions=False
        ),
        base_url="http://dstrack.test",
    ) as http:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        device = (
            await http.post(
                "/graphql",
                json={
                    "query": "query($id: ID!) { device(id: $id) { rawFiles { url } } }",
                    "variables": {"id": target.ssl},
                },
                headers=headers,
            )
        ).json()["data"]["device"]
        monkeypatch.setattr(services.raw_store, "get", explode)
        response = await http.get(device["rawFiles"][0]["url"], headers=headers)
    assert response.status_code == 500
    assert "unreadable" not in response.text and "Traceback" not in response.text


# --- forced updates: per request and per user ---------------------------------------------------


def _notes(services: Services) -> int:
    with Session(services.engine) as session:
        return len(session.exec(select(ActivityNote)).all())


async def test_more_than_100_forced_updates_in_one_request_are_refused(
    api: GraphQLClient, services: Services, target: Target
) -> None:
    before = _notes(services)
    body = await api.execute(FORCE_UPDATE, ids=[target.ssl] * 101)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert _notes(services) == before
    ok = await api.ok(FORCE_UPDATE, ids=[target.ssl] * 100)
    assert len(ok["forceUpdate"]["results"]) == 100


async def test_forced_updates_are_limited_per_user(services: Services, target: Target) -> None:
    limited = services_with(services, retrievals_per_10_min=3)
    async with api_client(limited) as api:
        alice = await make_user(api, "alice")
        bob = await make_user(api, "bob")

        for _ in range(3):
            first = await alice.ok(FORCE_UPDATE, ids=[target.ssl])
            assert [r["errors"] for r in first["forceUpdate"]["results"]] == [[]]
        notes = _notes(services)
        refused = await alice.execute(FORCE_UPDATE, ids=[target.ssl])
        assert refused["data"] is None
        [error] = refused["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert "at most 3" in error["message"]
        assert _notes(services) == notes  # the refused request updated nothing
        # Other users have their own budget.
        for _ in range(3):
            assert (await bob.ok(FORCE_UPDATE, ids=[target.ssl]))["forceUpdate"]["results"][0][
                "errors"
            ] == []
    assert all_counts(services)["devices"] == 3
