"""Devices by expiry: `devices(orderBy: EXPIRES_AT)`, soonest first, keyset pages, cursors."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from tests.api import helpers
from tests.api.expiry_support import certificate, restricted_token, standard
from tests.api.test_query_count import counting
from tests.conftest import GraphQLClient
from tests.fakes import pki
from tracking.refresh.services import Services

DEVICES = """
query($first: Int, $after: String, $filter: DeviceFilter, $order: DeviceOrder) {
  devices(first: $first, after: $after, filter: $filter, orderBy: $order) {
    totalCount
    edges { cursor node { id name expiresAt organization { name } sslDetails { validUntil } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

DAY = dt.timedelta(days=1)


async def _devices(api: GraphQLClient, **variables: Any) -> dict[str, Any]:
    connection: dict[str, Any] = (await api.ok(DEVICES, **variables))["devices"]
    return connection


def _names(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["name"] for edge in connection["edges"]]


async def _walk(api: GraphQLClient, first: int, **variables: Any) -> list[dict[str, Any]]:
    pages, after = [], None
    while True:
        page = await _devices(api, first=first, after=after, **variables)
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return pages
        after = page["pageInfo"]["endCursor"]


async def _mixed_inventory(api: GraphQLClient) -> str:
    """Devices created in an order unlike their expiry order, with ties and no-expiry ones."""
    org = await helpers.organization(api)
    now = pki.NOW
    await standard(api, org, "no expiry A")
    await certificate(api, org, "in 90 days", now + 90 * DAY)
    await certificate(api, org, "in 7 days (1)", now + 7 * DAY)
    await certificate(api, org, "expired 3 days ago", now - 3 * DAY)
    await standard(api, org, "no expiry B")
    await certificate(api, org, "in 7 days (2)", now + 7 * DAY)  # the same instant: by id
    await certificate(api, org, "in 30 days", now + 30 * DAY)
    await certificate(api, org, "in 7 days (3)", now + 7 * DAY)
    return org


EXPECTED = [
    "expired 3 days ago",
    "in 7 days (1)",
    "in 7 days (2)",
    "in 7 days (3)",
    "in 30 days",
    "in 90 days",
    "no expiry A",
    "no expiry B",
]


async def test_soonest_expiry_first_and_devices_without_expiry_last(api: GraphQLClient) -> None:
    await _mixed_inventory(api)

    everything = await _devices(api, first=100, order="EXPIRES_AT")

    assert _names(everything) == EXPECTED
    assert everything["totalCount"] == 8
    expiries = [edge["node"]["expiresAt"] for edge in everything["edges"]]
    assert expiries[:6] == sorted(expiries[:6])
    assert expiries[6:] == [None, None]
    # expiresAt is the certificate's validUntil.
    assert all(
        edge["node"]["expiresAt"] == edge["node"]["sslDetails"]["validUntil"]
        for edge in everything["edges"][:6]
    )


async def test_pages_by_expiry_give_every_device_once_in_the_same_order(
    api: GraphQLClient,
) -> None:
    await _mixed_inventory(api)

    for size in (1, 2, 3, 5):
        pages = await _walk(api, size, order="EXPIRES_AT")
        assert [name for page in pages for name in _names(page)] == EXPECTED, size
        assert {page["totalCount"] for page in pages} == {8}
        assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False] + [True] * (
            len(pages) - 1
        )
    # Any cursor resumes right after its device, ties and the no-expiry tail included.
    cursors = [e["cursor"] for e in (await _devices(api, first=8, order="EXPIRES_AT"))["edges"]]
    for i, cursor in enumerate(cursors):
        rest = await _devices(api, first=100, after=cursor, order="EXPIRES_AT")
        assert _names(rest) == EXPECTED[i + 1 :]


async def test_order_by_expiry_combines_with_the_filters(api: GraphQLClient) -> None:
    org = await _mixed_inventory(api)
    other = await helpers.organization(api, "Globex")
    await certificate(api, other, "Globex in 1 day", pki.NOW + DAY)

    within_a_week = await _devices(
        api,
        first=100,
        order="EXPIRES_AT",
        filter={"expiringBefore": (pki.NOW + 8 * DAY).isoformat()},
    )
    assert _names(within_a_week) == [
        "expired 3 days ago",
        "Globex in 1 day",
        "in 7 days (1)",
        "in 7 days (2)",
        "in 7 days (3)",
    ]
    pages = await _walk(api, 2, order="EXPIRES_AT", filter={"organizationId": org})
    assert [name for page in pages for name in _names(page)] == EXPECTED
    assert {page["totalCount"] for page in pages} == {8}


async def test_the_default_order_is_still_creation_order(api: GraphQLClient) -> None:
    await _mixed_inventory(api)
    creation = [
        "no expiry A",
        "in 90 days",
        "in 7 days (1)",
        "expired 3 days ago",
        "no expiry B",
        "in 7 days (2)",
        "in 30 days",
        "in 7 days (3)",
    ]
    assert _names(await _devices(api, first=100)) == creation
    assert _names(await _devices(api, first=100, order="ID")) == creation
    assert _names(await _devices(api, first=100, order=None)) == creation


async def test_a_cursor_only_continues_the_order_it_came_from(api: GraphQLClient) -> None:
    await _mixed_inventory(api)
    by_id = (await _devices(api, first=1))["pageInfo"]["endCursor"]
    by_expiry = (await _devices(api, first=1, order="EXPIRES_AT"))["pageInfo"]["endCursor"]
    forged = base64.b64encode(b"DeviceByExpiry:99999999999999999999:1").decode()
    garbage = ["not base64!", base64.b64encode(b"DeviceByExpiry:soon:1").decode(), forged]

    for cursor in (by_id, *garbage):
        body = await api.execute(DEVICES, first=5, after=cursor, order="EXPIRES_AT")
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_CURSOR"], cursor
    body = await api.execute(DEVICES, first=5, after=by_expiry, order="ID")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_CURSOR"]


async def test_a_restricted_user_gets_only_visible_devices_by_expiry(api: GraphQLClient) -> None:
    customer = await helpers.organization(api, "Customer Co", "CUSTOMER")
    vendor = await helpers.organization(api, "Vendor Co", "VENDOR")
    await certificate(api, vendor, "vendor soonest", pki.NOW + DAY)
    await certificate(api, customer, "customer later", pki.NOW + 20 * DAY)
    await certificate(api, customer, "customer sooner", pki.NOW + 10 * DAY)
    carol = api.as_user(await restricted_token(api, ["CUSTOMER"]))

    seen = await _devices(carol, first=1, order="EXPIRES_AT")
    assert (_names(seen), seen["totalCount"]) == (["customer sooner"], 2)
    rest = await _devices(carol, first=1, order="EXPIRES_AT", after=seen["pageInfo"]["endCursor"])
    assert (_names(rest), rest["pageInfo"]["hasNextPage"]) == (["customer later"], False)


async def test_a_page_by_expiry_is_one_statement(api: GraphQLClient, services: Services) -> None:
    await _mixed_inventory(api)
    after = (await _devices(api, first=2, order="EXPIRES_AT"))["pageInfo"]["endCursor"]
    query = """query($after: String) { devices(first: 3, after: $after, orderBy: EXPIRES_AT) {
        totalCount edges { cursor node { id name expiresAt organization { name } } } } }"""

    with counting(services) as statements:
        data = await api.ok(query, after=after)

    assert [e["node"]["name"] for e in data["devices"]["edges"]] == EXPECTED[2:5]
    assert data["devices"]["totalCount"] == 8
    # One for the token, one for the page (with its count, organizations and products).
    assert len(statements) == 2, statements
    assert "ORDER BY devices.expires_at" in statements[1]
