"""CSV over HTTP: the importDevices mutation and GET /export/devices.csv, as a client sees them."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from api.schema import schema
from tests.api import helpers
from tests.conftest import ADMIN_TOKEN, GraphQLClient, World
from tests.fakes import pki
from tests.fakes.tls_server import standard_certificates

IMPORT = """
mutation($csv: String!, $dryRun: Boolean) {
  importDevices(csv: $csv, dryRun: $dryRun) {
    created skipped failed errors { row code message }
  }
}"""
CREATE_LEVEL = """
mutation($input: CreateSecurityLevelInput!) {
  createSecurityLevel(input: $input) { securityLevel { id } errors { code } }
}"""
CREATE_USER = """
mutation($name: String!, $level: ID!) {
  createUser(input: {name: $name, securityLevelId: $level}) { token errors { code } }
}"""
DEVICES = "query { devices { totalCount edges { node { name sslDetails { commonName } } } } }"
HEADER = (
    "id,organization,name,category,source,common_name,issued_by,valid_until,days_left,"
    "chain_trusted,hostname_matches,domain,registrar,expires_at,last_updated_at,last_update_error"
)


async def import_csv(api: GraphQLClient, text: str, **variables: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.ok(IMPORT, csv=text, **variables))["importDevices"]
    return payload


async def customers_only_token(api: GraphQLClient) -> str:
    level = {
        "name": "Customers only",
        "crmAccess": True,
        "viewOrganizationTypes": ["CUSTOMER"],
        "canAddDevices": True,
        "canEditDevices": True,
        "canDeleteDevices": False,
    }
    created = (await api.ok(CREATE_LEVEL, input=level))["createSecurityLevel"]
    payload = await api.ok(CREATE_USER, name="tech", level=created["securityLevel"]["id"])
    token: str = payload["createUser"]["token"]
    return token


async def get_export(api: GraphQLClient, token: str | None = None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or api.token}"}
    return await api.http.get("/export/devices.csv", params=params, headers=headers)


def table(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


# --- import ---------------------------------------------------------------------------------------


def test_the_mutation_has_the_contract_signature() -> None:
    sdl = schema.as_str()
    assert "importDevices(csv: String!, dryRun: Boolean = false): ImportPayload!" in sdl
    types = schema._schema.type_map
    payload, error = types["ImportPayload"], types["ImportRowError"]
    assert {name: str(f.type) for name, f in payload.fields.items()} == {  # type: ignore[attr-defined]
        "created": "Int!",
        "skipped": "Int!",
        "failed": "Int!",
        "errors": "[ImportRowError!]!",
    }
    assert {name: str(f.type) for name, f in error.fields.items()} == {  # type: ignore[attr-defined]
        "row": "Int!",
        "code": "String!",
        "message": "String!",
    }


async def test_import_creates_devices_as_create_device_and_a_second_import_skips_them(
    api: GraphQLClient, world: World
) -> None:
    await helpers.organization(api, "Acme")
    pem = pki.test_ca().leaf("pem.example", dns_names=["pem.example"]).pem
    text = (
        "organization,category,source,name\r\n"
        f"Acme,SSL_CERTIFICATE,{world.host('good.test')},\r\n"
        f'Acme,SSL_CERTIFICATE,"{pem}",From a PEM\r\n'
        "Acme,SSL_CERTIFICATE,lalala.invalid,\r\n"
        "Acme,DOMAIN,*.example.com,\r\n"
    )
    first = await import_csv(api, text)
    assert first == {
        "created": 3,
        "skipped": 0,
        "failed": 1,
        "errors": [
            {
                "row": 3,
                "code": "CERTIFICATE_NOT_FOUND",
                "message": "SSL Certificate not found. Please check spelling and try again.",
            }
        ],
    }
    listed = (await api.ok(DEVICES))["devices"]
    assert listed["totalCount"] == 3
    assert sorted(
        (e["node"]["name"], (e["node"]["sslDetails"] or {}).get("commonName"))
        for e in listed["edges"]
    ) == [
        ("*.example.com", None),
        ("From a PEM", "pem.example"),
        (world.host("good.test"), "good.test"),
    ]

    second = await import_csv(api, text)
    assert (second["created"], second["skipped"], second["failed"]) == (0, 3, 1)
    assert await helpers.device_count(api) == 3


async def test_a_dry_run_says_what_would_happen_and_creates_nothing(
    api: GraphQLClient, world: World
) -> None:
    await helpers.organization(api, "Acme")
    text = f"organization,category,source\nAcme,SSL_CERTIFICATE,{world.host('good.test')}\n"
    dry = await import_csv(api, text, dryRun=True)
    assert dry == {"created": 1, "skipped": 0, "failed": 0, "errors": []}
    assert await helpers.device_count(api) == 0
    assert world.tls.connections == []


async def test_rows_of_hidden_organizations_are_not_found(api: GraphQLClient) -> None:
    await helpers.organization(api, "Acme", "CUSTOMER")
    await helpers.organization(api, "Supplier", "VENDOR")
    tech = api.as_user(await customers_only_token(api))
    text = (
        "organization,category,source\n"
        "Supplier,DOMAIN,*.supplier.example\n"
        "Nobody,DOMAIN,*.nobody.example\n"
        "Acme,DOMAIN,*.acme.example\n"
    )
    payload = await import_csv(tech, text)
    assert payload["errors"] == [
        {"row": 1, "code": "NOT_FOUND", "message": "Organization not found."},
        {"row": 2, "code": "NOT_FOUND", "message": "Organization not found."},
    ]
    assert payload["created"] == 1


async def test_a_file_over_the_limits_gets_a_clear_error(api: GraphQLClient) -> None:
    await helpers.organization(api, "Acme")
    rows = "".join(f"Acme,DOMAIN,*.d{i}.example\n" for i in range(5001))
    payload = await import_csv(api, "organization,category,source\n" + rows)
    assert payload["created"] == payload["failed"] == 0
    assert payload["errors"] == [
        {
            "row": 0,
            "code": "TOO_LARGE",
            "message": "The file has 5,001 rows; at most 5,000 can be imported in one request "
            "(the dstrack import command takes larger files).",
        }
    ]
    big = "organization,category,source\n" + "Acme,DOMAIN,*.x.example\n" * 50_000
    response = await api.post(IMPORT, csv=big)
    assert response.status_code == 413
    assert "larger than" in response.json()["errors"][0]["message"]
    assert await helpers.device_count(api) == 0


async def test_a_file_without_a_header_names_the_problem_as_row_zero(api: GraphQLClient) -> None:
    payload = await import_csv(api, "Acme,DOMAIN,example.com\n")
    assert [(e["row"], e["code"]) for e in payload["errors"]] == [(0, "INVALID_CSV")]
    assert payload["errors"][0]["message"].startswith("The first row must be a header")


# --- export ---------------------------------------------------------------------------------------


async def test_the_export_streams_the_visible_devices_under_the_exact_header(
    api: GraphQLClient, world: World
) -> None:
    acme = await helpers.organization(api, "Acme", "CUSTOMER")
    supplier = await helpers.organization(api, "Supplier", "VENDOR")
    good = await helpers.ssl_device(api, acme, world.host("good.test"), name="=cmd|' /C calc'!A0")
    expired = await helpers.ssl_device(api, acme, world.host("expired.test"))
    hidden = await helpers.ssl_device(api, supplier, world.host("good.test"))

    response = await get_export(api)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="devices.csv"' in response.headers["content-disposition"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert response.headers["cache-control"] == "no-store"
    assert response.text.splitlines()[0] == HEADER
    rows = table(response)
    assert [r["id"] for r in rows] == [good["id"], expired["id"], hidden["id"]]
    assert rows[0]["name"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["valid_until"] == good["sslDetails"]["validUntil"]
    assert rows[0]["common_name"] == "good.test"
    assert rows[1]["days_left"].startswith("-") and int(rows[1]["days_left"]) <= -69
    expected = standard_certificates()["expired.test"].leaf.cert.not_valid_after_utc
    assert rows[1]["valid_until"] == expected.isoformat()

    tech = await customers_only_token(api)
    assert [r["id"] for r in table(await get_export(api, tech))] == [good["id"], expired["id"]]
    filtered = await get_export(api, organizationId=acme, expiringWithinDays="0")
    assert [r["id"] for r in table(filtered)] == [expired["id"]]


async def test_bad_export_requests_get_clear_answers(api: GraphQLClient) -> None:
    supplier = await helpers.organization(api, "Supplier", "VENDOR")
    tech = await customers_only_token(api)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}):
        response = await api.http.get("/export/devices.csv", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    cases = [
        ({"category": "SERVER"}, 400, "category must be one of"),
        ({"expiringWithinDays": "soon"}, 400, "expiringWithinDays must be a whole number"),
        ({"organizationId": "42"}, 400, "organizationId is not the ID of an organization."),
        ({"sort": "name"}, 400, "Unknown parameter 'sort'"),
    ]
    for params, status, message in cases:
        response = await get_export(api, **params)
        assert response.status_code == status, params
        assert message in response.json()["error"]
    repeated = await api.http.get(
        "/export/devices.csv?category=DOMAIN&category=STANDARD",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert repeated.status_code == 400
    assert repeated.json() == {"error": "category is given more than once."}
    hidden = await get_export(api, tech, organizationId=supplier)
    missing = await get_export(api, tech, organizationId="T3JnYW5pemF0aW9uOjk5OQ==")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == {"error": "Organization not found."}


async def test_an_empty_export_is_the_header_alone(api: GraphQLClient) -> None:
    response = await get_export(api)
    assert response.status_code == 200
    assert response.text == HEADER + "\r\n"
