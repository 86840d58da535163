"""Who may call the API: bearer tokens, the GraphiQL page, health, RAW downloads, body limits."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.app import MAX_BODY_BYTES, create_app
from models import ApiToken, Organization, Product, SecurityLevel, User
from models.db import create_engine
from tests.api import helpers, queries
from tests.conftest import ADMIN_TOKEN, GraphQLClient, World
from tests.fakes import pki
from tracking.core.ids import encode_id
from tracking.manage import access
from tracking.refresh.services import Services

ME = "query { me { id name securityLevel { name isAdmin crmAccess viewOrganizationTypes } } }"
CREATE_ORG_BODY = {
    "query": 'mutation { createOrganization(input: {name: "Sneaky", type: CUSTOMER}) '
    "{ organization { id } errors { code } } }"
}
CREATE_LEVEL = """
mutation($input: CreateSecurityLevelInput!) {
  createSecurityLevel(input: $input) { securityLevel { id } errors { code } }
}"""
CREATE_USER = """
mutation($name: String!, $level: ID!) {
  createUser(input: {name: $name, securityLevelId: $level}) {
    user { id name } token errors { code }
  }
}"""


def _organization_count(services: Services) -> int:
    with Session(services.engine) as session:
        return len(session.exec(select(Organization)).all())


def _assert_unauthenticated(response: httpx.Response, case: str = "") -> None:
    assert response.status_code == 401, case
    assert response.headers["www-authenticate"] == "Bearer", case
    body = response.json()
    assert "data" not in body, case
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"], case


async def _user_token(api: GraphQLClient, name: str, **level: object) -> str:
    """A new user (and security level) created through the API; its token."""
    fields = {
        "name": f"{name} level",
        "crmAccess": True,
        "viewOrganizationTypes": ["CUSTOMER"],
        "canAddDevices": True,
        "canEditDevices": True,
        "canDeleteDevices": False,
        **level,
    }
    created = (await api.ok(CREATE_LEVEL, input=fields))["createSecurityLevel"]
    assert created["errors"] == []
    payload = (await api.ok(CREATE_USER, name=name, level=created["securityLevel"]["id"]))[
        "createUser"
    ]
    assert payload["errors"] == []
    token: str = payload["token"]
    return token


BAD_HEADERS = {
    "none": {},
    "wrong": {"Authorization": "Bearer not-the-token"},
    "longer": {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    "scheme-only": {"Authorization": "Bearer"},
    "empty": {"Authorization": "Bearer "},
    "no-scheme": {"Authorization": ADMIN_TOKEN},
    "basic": {"Authorization": f"Basic {ADMIN_TOKEN}"},
    "token-scheme": {"Authorization": f"Token {ADMIN_TOKEN}"},
    "two-tokens": {"Authorization": f"Bearer {ADMIN_TOKEN} {ADMIN_TOKEN}"},
    "huge": {"Authorization": f"Bearer {'x' * 5000}"},
}


async def test_operations_without_a_valid_token_are_refused_and_change_nothing(
    api: GraphQLClient, services: Services
) -> None:
    for case, headers in BAD_HEADERS.items():
        response = await api.http.post("/graphql", json=CREATE_ORG_BODY, headers=headers)
        _assert_unauthenticated(response, case)
        read = await api.http.post("/graphql", json={"query": ME}, headers=headers)
        _assert_unauthenticated(read, case)
    assert _organization_count(services) == 0


async def test_the_scheme_is_case_insensitive_and_the_right_token_works(
    api: GraphQLClient, services: Services
) -> None:
    response = await api.http.post(
        "/graphql", json=CREATE_ORG_BODY, headers={"Authorization": f"bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 200
    assert response.json()["data"]["createOrganization"]["errors"] == []
    assert _organization_count(services) == 1


async def test_graphiql_loads_in_a_browser_without_a_token(api: GraphQLClient) -> None:
    response = await api.http.get(
        "/graphql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
async def test_an_operation_in_the_url_needs_a_token_too(
    api: GraphQLClient, services: Services, accept: str
) -> None:
    for query in (ME, CREATE_ORG_BODY["query"]):
        response = await api.http.get(
            "/graphql", params={"query": query}, headers={"Accept": accept}
        )
        _assert_unauthenticated(response)
    assert _organization_count(services) == 0


async def test_operations_in_the_url_are_not_run_even_with_a_token(
    api: GraphQLClient, services: Services
) -> None:
    response = await api.http.get(
        "/graphql",
        params={"query": CREATE_ORG_BODY["query"]},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "text/html"},
    )
    assert response.status_code in (400, 405)
    assert _organization_count(services) == 0


async def test_healthz_answers_without_a_token(api: GraphQLClient) -> None:
    response = await api.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_me_is_the_configured_administrator(api: GraphQLClient) -> None:
    me = (await api.ok(ME))["me"]
    assert me["name"] == access.ADMIN_USER_NAME
    assert me["securityLevel"] == {
        "name": access.ADMIN_LEVEL_NAME,
        "isAdmin": True,
        "crmAccess": True,
        "viewOrganizationTypes": ["CUSTOMER", "LEAD", "PROSPECT", "VENDOR", "PARTNER"],
    }
    node = (await api.ok("query($id: ID!) { node(id: $id) { id } }", id=me["id"]))["node"]
    assert node == {"id": me["id"]}


async def test_starting_twice_keeps_one_administrator_and_one_token(
    services: Services, api: GraphQLClient
) -> None:
    create_app(services=services)
    create_app(services=services)
    with Session(services.engine) as session:
        assert len(session.exec(select(User)).all()) == 1
        assert len(session.exec(select(SecurityLevel)).all()) == 1
        assert len(session.exec(select(ApiToken)).all()) == 1
        assert len(session.exec(select(Product).where(col(Product.is_system))).all()) == 1
    assert (await api.ok(ME))["me"]["name"] == access.ADMIN_USER_NAME


def test_workers_starting_at_once_all_start_and_agree(services: Services) -> None:
    """Several API workers on one database start together: none crashes on a unique row
    another one inserted first, and there is still one administrator, token and product."""
    url = services.engine.url.render_as_string(hide_password=False)
    engines = [create_engine(url) for _ in range(6)]
    failures: list[BaseException] = []
    for _ in range(2):
        barrier = threading.Barrier(len(engines))

        def start(engine: Engine, barrier: threading.Barrier) -> None:
            barrier.wait()
            try:
                create_app(services=replace(services, engine=engine))
            except BaseException as error:  # reported below, not lost in the thread
                failures.append(error)

        threads = [threading.Thread(target=start, args=(e, barrier)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for engine in engines:
        engine.dispose()
    assert failures == []
    with Session(services.engine) as session:
        assert len(session.exec(select(User)).all()) == 1
        assert len(session.exec(select(ApiToken)).all()) == 1
        assert len(session.exec(select(Product)).all()) == 1


async def test_a_new_users_token_works_until_revoked(
    api: GraphQLClient, services: Services
) -> None:
    token = await _user_token(api, "dana")
    dana = api.as_user(token)
    assert (await dana.ok(ME))["me"]["name"] == "dana"
    assert access.authenticate(services.engine, token) is not None

    assert access.revoke_tokens(services.engine, user_name="dana") == 1

    _assert_unauthenticated(await dana.post(ME))
    assert access.authenticate(services.engine, token) is None
    assert (await api.ok(ME))["me"]["name"] == access.ADMIN_USER_NAME  # others unaffected


async def test_a_revoked_admin_token_stops_working(api: GraphQLClient, services: Services) -> None:
    access.revoke_tokens(services.engine, user_name=access.ADMIN_USER_NAME)
    _assert_unauthenticated(await api.post(ME))


async def _raw_url(api: GraphQLClient, type: str = "CUSTOMER") -> str:
    org = await helpers.organization(api, type=type)
    device = await helpers.ssl_device(api, org, pki.test_ca().leaf("raw.example").pem)
    [raw] = device["rawFiles"]
    url: str = raw["url"]
    return url


async def test_raw_download_needs_the_token(api: GraphQLClient) -> None:
    url = await _raw_url(api)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}):
        response = await api.http.get(url, headers=headers)
        assert response.status_code == 401
        assert "BEGIN CERTIFICATE" not in response.text
    response = await api.http.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    assert "BEGIN CERTIFICATE" in response.text
    assert "attachment" in response.headers["content-disposition"]


async def test_raw_download_of_an_unknown_file_is_404(api: GraphQLClient) -> None:
    await _raw_url(api)
    for raw_id in (encode_id("RawFile", 999), encode_id("Device", 1), "garbage", "%2E%2E"):
        response = await api.http.get(
            f"/raw/{raw_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert response.status_code == 404, raw_id


async def test_raw_download_follows_the_devices_visibility(api: GraphQLClient) -> None:
    """A user who may not see the device's organization gets 404, as for a missing file."""
    vendor_url = await _raw_url(api, type="VENDOR")
    customer_url = await _raw_url(api, type="CUSTOMER")
    token = await _user_token(api, "erin", viewOrganizationTypes=["CUSTOMER"])
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.http.get(vendor_url, headers=headers)).status_code == 404
    assert (await api.http.get(customer_url, headers=headers)).status_code == 200


async def test_a_body_over_one_mebibyte_is_refused(api: GraphQLClient, services: Services) -> None:
    padding = " " * (MAX_BODY_BYTES + 1 - len(json.dumps(CREATE_ORG_BODY)))
    body = (json.dumps(CREATE_ORG_BODY) + padding).encode()
    assert len(body) == MAX_BODY_BYTES + 1
    response = await api.http.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert _organization_count(services) == 0


async def test_a_body_of_exactly_one_mebibyte_is_accepted(
    api: GraphQLClient, services: Services
) -> None:
    padding = " " * (MAX_BODY_BYTES - len(json.dumps(CREATE_ORG_BODY)))
    body = (json.dumps(CREATE_ORG_BODY) + padding).encode()
    response = await api.http.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert _organization_count(services) == 1


async def test_a_streamed_body_without_length_over_the_limit_is_refused(
    api: GraphQLClient, services: Services
) -> None:
    """No Content-Length announced (chunked upload): the limit still holds, with a 413."""

    async def chunks() -> AsyncIterator[bytes]:
        yield json.dumps(CREATE_ORG_BODY).encode()
        for _ in range(11):
            yield b" " * 100_000

    response = await api.http.post(
        "/graphql",
        content=chunks(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert _organization_count(services) == 0


async def test_a_streamed_body_within_the_limit_is_run(
    api: GraphQLClient, services: Services
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        text = json.dumps(CREATE_ORG_BODY).encode()
        yield text[:10]
        yield text[10:]

    response = await api.http.post(
        "/graphql",
        content=chunks(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["data"]["createOrganization"]["errors"] == []
    assert _organization_count(services) == 1


async def test_a_user_sees_only_organizations_of_their_types(
    api: GraphQLClient, world: World
) -> None:
    await helpers.organization(api, "Customer Co", "CUSTOMER")
    await helpers.organization(api, "Vendor Co", "VENDOR")
    token = await _user_token(api, "frank", viewOrganizationTypes=["CUSTOMER"])
    listed = await api.as_user(token).ok("query { organizations { edges { node { name } } } }")
    assert [e["node"]["name"] for e in listed["organizations"]["edges"]] == ["Customer Co"]
    created = await api.as_user(token).ok(
        queries.CREATE_ORGANIZATION, name="Other Vendor", type="VENDOR"
    )
    assert [e["code"] for e in created["createOrganization"]["errors"]] == ["FORBIDDEN"]


async def test_abusive_operations_are_refused_before_they_run(api: GraphQLClient) -> None:
    deep = "{ devices { edges { node { " + "parent { " * 12 + "id" + " }" * 12 + " } } } }"
    aliases = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(51)) + " }"
    tokens = "{ me { " + "id " * 4001 + "} }"
    for query, words in ((deep, "depth"), (aliases, "aliases"), (tokens, "tokens")):
        body = await api.execute(query)
        assert body["data"] is None, words
        assert words in body["errors"][0]["message"]
    batch = await api.http.post(
        "/graphql",
        json=[{"query": ME}, {"query": ME}],
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert batch.status_code == 400
