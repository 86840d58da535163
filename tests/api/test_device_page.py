"""A page of devices resolves organizations, products and SSL details for the whole page at once;
what it shows must be exactly what each device shows on its own (through the DataLoaders)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session, delete

from api import queries as api_queries
from models import SslDetailsRecord
from tests.api import helpers, queries
from tests.api.test_query_count import counting
from tests.conftest import GraphQLClient
from tests.fakes import pki
from tracking.core.ids import decode_pk, encode_id
from tracking.refresh.services import Services

PAGE = f"""
query($first: Int, $after: String) {{
  devices(first: $first, after: $after) {{
    totalCount edges {{ node {{ {queries.DEVICE_FIELDS} }} }}
  }}
}}"""

WITHOUT_DETAILS = """
{ devices(first: 100) { edges { node { id organization { name } product { name } } } } }
"""


def _cursor(device_id: str) -> str:
    pk = decode_pk(device_id, "Device")
    assert pk is not None
    return encode_id("cursor", pk)


async def _devices(api: GraphQLClient) -> list[str]:
    """Devices of two organizations: SSL ones (one without SSL details) and a standard one."""
    acme = await helpers.organization(api, "Acme")
    globex = await helpers.organization(api, "Globex", type="VENDOR")
    ca = pki.test_ca()
    ids = []
    for n, org in enumerate((acme, globex, acme)):
        device = await helpers.ssl_device(api, org, ca.leaf(f"d{n}.example").pem)
        ids.append(device["id"])
    payload = await helpers.create_device(
        api, organizationId=globex, category="STANDARD", name="printer"
    )
    assert payload["errors"] == []
    ids.append(payload["device"]["id"])
    return ids


async def test_a_page_shows_what_each_device_shows_alone(
    api: GraphQLClient, services: Services
) -> None:
    ids = await _devices(api)
    gone = decode_pk(ids[2], "Device")
    with Session(services.engine) as session:  # an SSL device whose details are not there
        session.exec(delete(SslDetailsRecord).where(sa.column("device_id") == gone))
        session.commit()

    page = (await api.ok(PAGE, first=100))["devices"]
    nodes = [edge["node"] for edge in page["edges"]]
    alone = [(await api.ok(queries.DEVICE, id=id))["device"] for id in ids]
    assert nodes == alone
    assert [n["organization"]["name"] for n in nodes] == ["Acme", "Globex", "Acme", "Globex"]
    assert [n["sslDetails"] is None for n in nodes] == [False, False, True, True]
    assert nodes[0]["sslDetails"]["commonName"] == "d0.example"

    # The same across pages (each page resolves its own devices).
    first = (await api.ok(PAGE, first=2))["devices"]
    cursor = _cursor(nodes[1]["id"])
    rest = (await api.ok(PAGE, first=2, after=cursor))["devices"]
    assert [e["node"] for e in first["edges"] + rest["edges"]] == alone
    assert first["totalCount"] == rest["totalCount"] == 4


async def test_ssl_details_come_with_the_page_when_asked_for(
    api: GraphQLClient, services: Services
) -> None:
    await _devices(api)
    with counting(services) as statements:
        await api.ok(WITHOUT_DETAILS)
    assert not any("ssl_details" in s for s in statements)
    with counting(services) as statements:
        await api.ok(PAGE, first=100)
    assert sum("FROM devices" in s and "ssl_details" in s for s in statements) == 1
    assert not any("FROM ssl_details" in s for s in statements)
    # Through fragments and aliases too.
    query = """
      query { devices { all: edges { ...Node } } }
      fragment Node on DeviceEdge {
        node { ... on Device { certificate: sslDetails { commonName } } }
      }
    """
    with counting(services) as statements:
        data = await api.ok(query)
    assert [e["node"]["certificate"] is None for e in data["devices"]["all"]] == [
        False,
        False,
        False,
        True,
    ]
    assert not any("FROM ssl_details" in s for s in statements)


async def test_without_the_page_s_ssl_details_the_dataloader_serves_them(
    api: GraphQLClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _devices(api)
    alone = [(await api.ok(queries.DEVICE, id=id))["device"] for id in ids]
    monkeypatch.setattr(api_queries, "_selects", lambda *args: False)
    with counting(services) as statements:
        page = (await api.ok(PAGE, first=100))["devices"]
    assert [edge["node"] for edge in page["edges"]] == alone
    assert sum("FROM ssl_details" in s for s in statements) == 1  # one batch for the page
