"""The inventory around devices: organizations, contracts, products and their defaults."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from models import Contract, Device, Organization, Product
from tests.api import helpers, queries
from tests.conftest import GraphQLClient
from tests.fakes import pki
from tracking.core.ids import encode_id
from tracking.refresh.services import Services

CREATE_PRODUCT = """
mutation($name: String!) {
  createProduct(input: {name: $name}) { product { id name isSystem } errors { field code message } }
}"""
SET_DEFAULT_PRODUCT = """
mutation($category: DeviceCategory!, $id: ID!) {
  setDefaultProduct(category: $category, productId: $id) {
    product { id name } errors { field code message }
  }
}"""
PRODUCTS = "query { products { id name isSystem } }"
ORGANIZATIONS = """
query($first: Int, $after: String) {
  organizations(first: $first, after: $after) {
    edges { cursor node { id name type } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


def _count(services: Services, model: type[Any]) -> int:
    with Session(services.engine) as session:
        return len(session.exec(select(model)).all())


async def _product(api: GraphQLClient, name: str) -> str:
    payload = (await api.ok(CREATE_PRODUCT, name=name))["createProduct"]
    assert payload["errors"] == []
    return str(payload["product"]["id"])


async def _contract(api: GraphQLClient, org: str, name: str = "Support") -> str:
    payload = (await api.ok(queries.CREATE_CONTRACT, org=org, name=name))["createContract"]
    assert payload["errors"] == []
    return str(payload["contract"]["id"])


def _pem(cn: str = "inventory.example") -> str:
    return pki.test_ca().leaf(cn).pem


# Organizations ------------------------------------------------------------------------


async def test_organizations_of_every_type_are_created(api: GraphQLClient) -> None:
    for type in ("CUSTOMER", "LEAD", "PROSPECT", "VENDOR", "PARTNER"):
        payload = (await api.ok(queries.CREATE_ORGANIZATION, name="  Acme Corp ", type=type))[
            "createOrganization"
        ]
        assert payload["errors"] == []
        organization = payload["organization"]
        assert organization["name"] == "Acme Corp"
        assert organization["type"] == type
        node = await api.ok(
            "query($id: ID!) { node(id: $id) { ... on Organization { id name type } } }",
            id=organization["id"],
        )
        assert node["node"] == organization


BAD_NAMES = {
    "": "REQUIRED",
    "   \t ": "REQUIRED",
    "x" * 201: "TOO_LONG",
    "Acme\x00Corp": "INVALID_INPUT",
    "Acme\nCorp": "INVALID_INPUT",
    "Acme\x1b[31m": "INVALID_INPUT",
    "Acme\x7f": "INVALID_INPUT",
    "Ac\x85me": "INVALID_INPUT",  # NEL, a C1 control
    "Acme\u2028Corp": "INVALID_INPUT",  # LINE SEPARATOR: not in a one-line name
}


async def test_bad_organization_names_are_refused_and_nothing_is_saved(
    api: GraphQLClient, services: Services
) -> None:
    for name, code in BAD_NAMES.items():
        payload = (await api.ok(queries.CREATE_ORGANIZATION, name=name))["createOrganization"]
        assert payload["organization"] is None, name
        [error] = payload["errors"]
        assert (error["field"], error["code"]) == ("name", code), name
        assert error["message"]
    assert _count(services, Organization) == 0


async def test_an_organization_name_of_the_maximum_length_is_fine(api: GraphQLClient) -> None:
    payload = (await api.ok(queries.CREATE_ORGANIZATION, name="é" * 200))["createOrganization"]
    assert payload["errors"] == []
    assert payload["organization"]["name"] == "é" * 200


async def test_an_unknown_organization_type_is_a_graphql_error(
    api: GraphQLClient, services: Services
) -> None:
    body = await api.execute(queries.CREATE_ORGANIZATION, name="Acme", type="SUPPLIER")
    assert body.get("data") is None
    assert body["errors"]
    assert _count(services, Organization) == 0


async def test_organizations_connection_pages_through_all(api: GraphQLClient) -> None:
    names = [f"Org {i:02d}" for i in range(7)]
    for name in names:
        await helpers.organization(api, name)

    seen: list[str] = []
    after = None
    pages = []
    while True:
        page = (await api.ok(ORGANIZATIONS, first=3, after=after))["organizations"]
        pages.append(page)
        seen += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == names
    assert [len(p["edges"]) for p in pages] == [3, 3, 1]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    for page in pages:
        info = page["pageInfo"]
        assert info["startCursor"] == page["edges"][0]["cursor"]
        assert info["endCursor"] == page["edges"][-1]["cursor"]

    empty = (await api.ok(ORGANIZATIONS, first=0))["organizations"]
    assert empty["edges"] == []
    assert empty["pageInfo"]["startCursor"] is None
    default = (await api.ok(ORGANIZATIONS))["organizations"]
    assert len(default["edges"]) == 7


@pytest.mark.parametrize("first", [-1, 101])
async def test_organizations_page_size_is_bounded(api: GraphQLClient, first: int) -> None:
    body = await api.execute(ORGANIZATIONS, first=first)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_PAGE_SIZE"


async def test_organizations_refuse_a_foreign_cursor(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    body = await api.execute(ORGANIZATIONS, after=org)  # an ID, not a cursor
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


# Contracts ----------------------------------------------------------------------------


async def test_a_contract_belongs_to_its_organization(api: GraphQLClient) -> None:
    org = await helpers.organization(api, "Acme")
    payload = (await api.ok(queries.CREATE_CONTRACT, org=org, name=" Managed services "))[
        "createContract"
    ]
    assert payload["errors"] == []
    assert payload["contract"]["name"] == "Managed services"
    assert payload["contract"]["organization"] == {"id": org, "name": "Acme"}


async def test_a_contract_of_an_unknown_organization_is_not_found(
    api: GraphQLClient, services: Services
) -> None:
    await helpers.organization(api)
    for org_id in (encode_id("Organization", 999), encode_id("Product", 1), "not-an-id", ""):
        payload = (await api.ok(queries.CREATE_CONTRACT, org=org_id, name="Support"))[
            "createContract"
        ]
        assert payload["contract"] is None, org_id
        assert [(e["field"], e["code"]) for e in payload["errors"]] == [
            ("organizationId", "NOT_FOUND")
        ], org_id
    assert _count(services, Contract) == 0


async def test_a_contract_needs_a_name(api: GraphQLClient, services: Services) -> None:
    org = await helpers.organization(api)
    payload = (await api.ok(queries.CREATE_CONTRACT, org=org, name=" "))["createContract"]
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("name", "REQUIRED")]
    assert _count(services, Contract) == 0


# Products -----------------------------------------------------------------------------


async def test_products_list_the_system_product(api: GraphQLClient) -> None:
    products = (await api.ok(PRODUCTS))["products"]
    assert [(p["name"], p["isSystem"]) for p in products] == [("None", True)]


async def test_created_products_are_listed_after_the_system_product(api: GraphQLClient) -> None:
    ssl = await _product(api, "SSL Certificate")
    products = (await api.ok(PRODUCTS))["products"]
    assert [(p["name"], p["isSystem"]) for p in products] == [
        ("None", True),
        ("SSL Certificate", False),
    ]
    assert products[1]["id"] == ssl


async def test_a_duplicate_product_name_is_refused(api: GraphQLClient, services: Services) -> None:
    await _product(api, "SSL Certificate")
    for name in ("SSL Certificate", "  SSL Certificate  ", "None"):
        payload = (await api.ok(CREATE_PRODUCT, name=name))["createProduct"]
        assert payload["product"] is None, name
        assert [(e["field"], e["code"]) for e in payload["errors"]] == [
            ("name", "DUPLICATE_NAME")
        ], name
    assert _count(services, Product) == 2


async def test_a_new_ssl_device_gets_the_default_product_of_its_category(
    api: GraphQLClient,
) -> None:
    ssl = await _product(api, "SSL Certificate")
    payload = (await api.ok(SET_DEFAULT_PRODUCT, category="SSL_CERTIFICATE", id=ssl))[
        "setDefaultProduct"
    ]
    assert payload == {"product": {"id": ssl, "name": "SSL Certificate"}, "errors": []}

    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, _pem())
    assert device["product"] == {"id": ssl, "name": "SSL Certificate", "isSystem": False}

    standard = await helpers.create_device(
        api, organizationId=org, category="STANDARD", name="Router"
    )
    assert standard["device"]["product"]["name"] == "None"


async def test_the_default_product_can_be_changed(api: GraphQLClient) -> None:
    first = await _product(api, "SSL Certificate")
    second = await _product(api, "Managed SSL")
    await api.ok(SET_DEFAULT_PRODUCT, category="SSL_CERTIFICATE", id=first)
    await api.ok(SET_DEFAULT_PRODUCT, category="SSL_CERTIFICATE", id=second)
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, _pem())
    assert device["product"]["id"] == second


async def test_an_explicit_product_wins_over_the_default(api: GraphQLClient) -> None:
    default = await _product(api, "SSL Certificate")
    chosen = await _product(api, "Wildcard SSL")
    await api.ok(SET_DEFAULT_PRODUCT, category="SSL_CERTIFICATE", id=default)
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, _pem(), productId=chosen)
    assert device["product"]["id"] == chosen


async def test_without_a_default_a_device_gets_the_system_product(api: GraphQLClient) -> None:
    await _product(api, "SSL Certificate")  # exists, but is nobody's default
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, _pem())
    assert device["product"]["name"] == "None"
    assert device["product"]["isSystem"] is True


async def test_setting_an_unknown_default_product_is_not_found(api: GraphQLClient) -> None:
    for product_id in (encode_id("Product", 999), encode_id("Organization", 1), "junk"):
        payload = (await api.ok(SET_DEFAULT_PRODUCT, category="SSL_CERTIFICATE", id=product_id))[
            "setDefaultProduct"
        ]
        assert payload["product"] is None, product_id
        assert [(e["field"], e["code"]) for e in payload["errors"]] == [
            ("productId", "NOT_FOUND")
        ], product_id
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, _pem())
    assert device["product"]["name"] == "None"


async def test_a_device_with_an_unknown_product_is_refused(
    api: GraphQLClient, services: Services
) -> None:
    org = await helpers.organization(api)
    payload = await helpers.create_device(
        api,
        organizationId=org,
        category="SSL_CERTIFICATE",
        sslSource=_pem(),
        productId=encode_id("Product", 999),
    )
    assert payload["device"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("productId", "NOT_FOUND")]
    assert _count(services, Device) == 0


# Devices and their organization -------------------------------------------------------


async def test_a_device_can_carry_a_contract_of_its_organization(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    contract = await _contract(api, org, "Hosting")
    device = await helpers.ssl_device(api, org, _pem(), contractId=contract)
    assert device["contract"] == {"id": contract, "name": "Hosting"}
    assert device["organization"]["id"] == org


async def test_a_contract_of_another_organization_is_refused(
    api: GraphQLClient, services: Services
) -> None:
    acme = await helpers.organization(api, "Acme")
    globex = await helpers.organization(api, "Globex")
    globex_contract = await _contract(api, globex)
    for fields in (
        {"category": "SSL_CERTIFICATE", "sslSource": _pem()},
        {"category": "STANDARD", "name": "Router"},
    ):
        payload = await helpers.create_device(
            api, organizationId=acme, contractId=globex_contract, **fields
        )
        assert payload["device"] is None
        assert [(e["field"], e["code"]) for e in payload["errors"]] == [
            ("contractId", "CONTRACT_ORGANIZATION_MISMATCH")
        ]
    assert _count(services, Device) == 0


async def test_an_unknown_contract_is_refused(api: GraphQLClient, services: Services) -> None:
    org = await helpers.organization(api)
    payload = await helpers.create_device(
        api,
        organizationId=org,
        category="STANDARD",
        name="Router",
        contractId=encode_id("Contract", 42),
    )
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("contractId", "NOT_FOUND")]
    assert _count(services, Device) == 0


async def test_a_device_of_an_unknown_organization_is_refused(
    api: GraphQLClient, services: Services
) -> None:
    payload = await helpers.create_device(
        api, organizationId=encode_id("Organization", 5), category="STANDARD", name="Router"
    )
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("organizationId", "NOT_FOUND")]
    assert _count(services, Device) == 0


@pytest.mark.parametrize("name", [None, "", "   "])
async def test_a_standard_device_needs_a_name(
    api: GraphQLClient, services: Services, name: str | None
) -> None:
    org = await helpers.organization(api)
    fields: dict[str, Any] = {"organizationId": org, "category": "STANDARD"}
    if name is not None:
        fields["name"] = name
    payload = await helpers.create_device(api, **fields)
    assert payload["device"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("name", "REQUIRED")]
    assert _count(services, Device) == 0


async def test_a_standard_device_is_saved_with_what_was_given(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    contract = await _contract(api, org)
    payload = await helpers.create_device(
        api,
        organizationId=org,
        contractId=contract,
        category="STANDARD",
        name=" Core router ",
        description="Rack 4\nslot 2",
        active=False,
    )
    assert payload["errors"] == []
    device = payload["device"]
    assert device["name"] == "Core router"
    assert device["description"] == "Rack 4\nslot 2"
    assert device["active"] is False
    assert device["category"] == "STANDARD"
    assert device["sslSource"] is None
    assert device["sslDetails"] is None
    assert device["updateSchedule"] is None
    assert device["rawFiles"] == []
    assert [n["text"] for n in device["activity"]] == ["Device created by admin."]
    assert (await api.ok(queries.DEVICE, id=device["id"]))["device"] == device


BAD_DEVICE_TEXTS: list[tuple[dict[str, str], str, str]] = [
    ({"name": "x" * 201}, "name", "TOO_LONG"),
    ({"name": "Router\x00"}, "name", "INVALID_INPUT"),
    ({"name": "Router", "description": "x" * 4001}, "description", "TOO_LONG"),
    ({"name": "Router", "description": "bell\x07"}, "description", "INVALID_INPUT"),
]


async def test_bad_device_texts_are_refused(api: GraphQLClient, services: Services) -> None:
    org = await helpers.organization(api)
    for fields, field, code in BAD_DEVICE_TEXTS:
        payload = await helpers.create_device(
            api, organizationId=org, category="STANDARD", **fields
        )
        assert [(e["field"], e["code"]) for e in payload["errors"]] == [(field, code)], fields
    assert _count(services, Device) == 0


async def test_a_description_is_measured_without_its_surrounding_blanks(
    api: GraphQLClient,
) -> None:
    org = await helpers.organization(api)
    text = "line one\u2028line two\r\n" + "x" * (4000 - 19)
    assert len(text) == 4000
    payload = await helpers.create_device(
        api,
        organizationId=org,
        category="STANDARD",
        name="Router",
        description=f"\n  {text}  \n\n",
    )
    assert payload["errors"] == []
    assert payload["device"]["description"] == text
