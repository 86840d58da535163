"""A page of devices with their alerts costs the same few statements for 2 or 12 devices."""

from __future__ import annotations

from tests.api import helpers
from tests.api.test_alerts import CHANNEL, _expiring_device
from tests.api.test_query_count import counting
from tests.conftest import GraphQLClient
from tracking.alerts import sweep
from tracking.refresh.services import Services

PAGE = """
query { devices(first: 100) { edges { node {
  id name alertsMuted
  alerts(first: 3) { id kind state message deliveries { state attempts channel { name target } } }
} } } }"""


async def _statements(api: GraphQLClient, services: Services) -> int:
    with counting(services) as statements:
        data = await api.ok(PAGE)
    assert all(e["node"]["alerts"] for e in data["devices"]["edges"])
    return len(statements)


async def test_device_alerts_are_loaded_in_batches(api: GraphQLClient, services: Services) -> None:
    org = await helpers.organization(api)
    await api.ok(CHANNEL, input={"name": "all", "kind": "EMAIL", "emailTo": ["a@example.com"]})
    channels = (await api.ok("{ notificationChannels { id } }"))["notificationChannels"]
    await api.ok(
        "mutation($ids: [ID!]) { setAlertPolicy(input: {channelIds: $ids}) { errors { code } } }",
        ids=[c["id"] for c in channels],
    )
    for i in range(2):
        await _expiring_device(api, org, f"d{i}")
    sweep(services.engine)
    few = await _statements(api, services)
    for i in range(2, 12):
        await _expiring_device(api, org, f"d{i}")
    sweep(services.engine)
    many = await _statements(api, services)
    assert few == many <= 8
