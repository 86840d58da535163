"""Alerts through GraphQL: channels (secrets once, masked after), policies, alerts, muting, and
the same permission rules as devices. Bad input is a UserError and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.api import helpers
from tests.conftest import GraphQLClient, World, services_with
from tests.security.support import make_user, stored_text
from tests.tracking.alerts.support import http_receiver, pem_expiring
from tracking.alerts import sweep
from tracking.core import clock
from tracking.refresh.services import Services

CHANNEL = """
mutation($input: CreateNotificationChannelInput!) {
  createNotificationChannel(input: $input) {
    channel { id name kind enabled target organization { id name } }
    secret errors { field code message }
  }
}"""
POLICY = """
mutation($input: SetAlertPolicyInput!) {
  setAlertPolicy(input: $input) {
    policy { organization { id } expiryThresholdsDays notifyOnChange failuresBeforeAlert
             channels { id name } }
    errors { field code message }
  }
}"""
READ_POLICY = """
query($org: ID) { alertPolicy(organizationId: $org) {
  organization { id } expiryThresholdsDays notifyOnChange failuresBeforeAlert
  channels { name } } }"""
ALERTS = """
query($first: Int, $after: String, $filter: AlertFilter) {
  alerts(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id kind severity state message createdAt thresholdDays
      device { id name alertsMuted }
      deliveries { state attempts lastError deliveredAt channel { name target } }
    } }
  }
}"""
DEVICE_ALERTS = """
query($id: ID!) { device(id: $id) { alertsMuted alerts(first: 5) { kind thresholdDays } } }"""
ACK = """
mutation($id: ID!) { acknowledgeAlert(id: $id) { alert { id state } errors { code message } } }"""
MUTE = """
mutation($id: ID!, $muted: Boolean!) {
  setDeviceAlertsMuted(id: $id, muted: $muted) { device { id alertsMuted } errors { code } }
}"""
TEST = """
mutation($id: ID!) { testNotificationChannel(id: $id) {
  channel { name } errors { field code message } } }"""
DELETE = """
mutation($id: ID!) {
  deleteNotificationChannel(id: $id) { channel { id enabled } errors { code } } }"""
CHANNELS = "{ notificationChannels { name target organization { name } } }"


async def _channel(api: GraphQLClient, **input: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.ok(CHANNEL, input=input))["createNotificationChannel"]
    return payload


async def _expiring_device(api: GraphQLClient, org: str, name: str, days: int = 5) -> str:
    pem = pem_expiring(clock.now() + timedelta(days=days, hours=6), cn=f"{name}.example.com")
    device = await helpers.ssl_device(api, org, pem, name=name)
    return str(device["id"])


async def test_channels_show_their_secret_once_and_masked_after(
    api: GraphQLClient, world: World
) -> None:
    world.dns.load({"hooks.example.com.": {"A": "127.0.0.1"}}, origin="example.com.")
    org = await helpers.organization(api)
    hook = await _channel(
        api,
        name="hook",
        kind="WEBHOOK",
        organizationId=org,
        url="https://hooks.example.com/services/T000/B000/XXXXSECRET?token=abc",
    )
    assert hook["errors"] == []
    assert hook["secret"].startswith("whsec_")
    assert (
        hook["channel"]["target"] == "https://hooks.example.com/services/****/****/****?token=****"
    )
    slack = await _channel(
        api, name="chat", kind="APPRISE", url="slack://TokenA/TokenB/TokenC/#general"
    )
    assert slack["errors"] == [] and slack["secret"] is None
    assert slack["channel"]["target"] == "slack://****"
    assert slack["channel"]["organization"] is None
    mail = await _channel(
        api,
        name="ops",
        kind="EMAIL",
        organizationId=org,
        emailTo=["a@example.com", "b@example.org"],
    )
    assert mail["channel"]["target"] == "a@example.com, b@example.org"

    listed = (await api.ok(CHANNELS))["notificationChannels"]
    text = str(listed)
    assert "XXXXSECRET" not in text and "TokenB" not in text and hook["secret"] not in text
    assert [c["name"] for c in listed] == ["hook", "chat", "ops"]


@pytest.mark.parametrize(
    ("input", "field", "code"),
    [
        ({"kind": "EMAIL", "emailTo": ["not an address"]}, "emailTo", "INVALID_INPUT"),
        ({"kind": "EMAIL", "emailTo": []}, "emailTo", "REQUIRED"),
        ({"kind": "WEBHOOK", "url": "ftp://example.com/x"}, "url", "INVALID_INPUT"),
        ({"kind": "WEBHOOK", "url": "https://"}, "url", "INVALID_INPUT"),
        (
            {"kind": "WEBHOOK", "url": "https://example.com", "secret": "hunter2"},
            "secret",
            "INVALID_INPUT",
        ),
        ({"kind": "APPRISE", "url": "mailto://u:p@example.com"}, "url", "INVALID_INPUT"),
        ({"kind": "APPRISE", "url": "syslog://"}, "url", "INVALID_INPUT"),
        ({"kind": "APPRISE", "url": "nonsense"}, "url", "INVALID_INPUT"),
        ({"kind": "EMAIL", "emailTo": ["a@example.com"], "name": " "}, "name", "REQUIRED"),
    ],
)
async def test_bad_channels_are_user_errors_and_save_nothing(
    api: GraphQLClient, services: Services, input: dict[str, Any], field: str, code: str
) -> None:
    before = stored_text(services)
    payload = await _channel(api, **{"name": "x", **input})
    assert payload["channel"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [(field, code)]
    assert "hunter2" not in str(payload)
    assert stored_text(services) == before


async def test_a_webhook_to_a_private_address_is_refused(services: Services) -> None:
    from tests.conftest import api_client

    guarded = services_with(services, allow_private_targets=False)
    async with api_client(guarded) as api:
        payload = await _channel(api, name="x", kind="WEBHOOK", url="http://127.0.0.1:9/hook")
        assert [e["code"] for e in payload["errors"]] == ["PRIVATE_ADDRESS_REFUSED"]
        payload = await _channel(api, name="x", kind="APPRISE", url="json://10.1.2.3/hook")
        assert [e["code"] for e in payload["errors"]] == ["PRIVATE_ADDRESS_REFUSED"]


@pytest.mark.parametrize(
    ("input", "field"),
    [
        ({"expiryThresholdsDays": []}, "expiryThresholdsDays"),
        ({"expiryThresholdsDays": [30, -1]}, "expiryThresholdsDays"),
        ({"expiryThresholdsDays": [0]}, "expiryThresholdsDays"),
        ({"expiryThresholdsDays": list(range(1, 13))}, "expiryThresholdsDays"),
        ({"expiryThresholdsDays": [100000]}, "expiryThresholdsDays"),
        ({"failuresBeforeAlert": 0}, "failuresBeforeAlert"),
    ],
)
async def test_bad_policies_are_user_errors_and_change_nothing(
    api: GraphQLClient, services: Services, input: dict[str, Any], field: str
) -> None:
    before = stored_text(services)
    payload = (await api.ok(POLICY, input=input))["setAlertPolicy"]
    assert payload["policy"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [(field, "INVALID_INPUT")]
    assert stored_text(services) == before


async def test_policies_global_and_per_organization(api: GraphQLClient) -> None:
    acme = await helpers.organization(api, "Acme")
    other = await helpers.organization(api, "Other")
    default = (await api.ok(READ_POLICY))["alertPolicy"]
    assert default == {
        "organization": None,
        "expiryThresholdsDays": [30, 14, 7, 3, 1],
        "notifyOnChange": True,
        "failuresBeforeAlert": 3,
        "channels": [],
    }
    theirs = await _channel(
        api, name="theirs", kind="EMAIL", organizationId=other, emailTo=["o@x.org"]
    )
    ours = await _channel(api, name="ours", kind="EMAIL", organizationId=acme, emailTo=["a@x.org"])
    foreign = (
        await api.ok(
            POLICY, input={"organizationId": acme, "channelIds": [theirs["channel"]["id"]]}
        )
    )["setAlertPolicy"]
    assert [(e["field"], e["code"]) for e in foreign["errors"]] == [("channelIds", "INVALID_INPUT")]
    assert "another organization" in foreign["errors"][0]["message"]

    done = (
        await api.ok(
            POLICY,
            input={
                "organizationId": acme,
                "expiryThresholdsDays": [7, 60, 7],
                "failuresBeforeAlert": 5,
                "channelIds": [ours["channel"]["id"]],
            },
        )
    )["setAlertPolicy"]
    assert done["errors"] == []
    assert done["policy"] == {
        "organization": {"id": acme},
        "expiryThresholdsDays": [60, 7],
        "notifyOnChange": True,
        "failuresBeforeAlert": 5,
        "channels": [{"id": ours["channel"]["id"], "name": "ours"}],
    }
    assert (await api.ok(READ_POLICY, org=other))["alertPolicy"]["organization"] is None


async def test_alerts_list_filter_acknowledge_and_mute(
    api: GraphQLClient, services: Services
) -> None:
    org = await helpers.organization(api)
    first = await _expiring_device(api, org, "first", days=5)
    second = await _expiring_device(api, org, "second", days=20)
    sweep(services.engine)

    listed = (await api.ok(ALERTS))["alerts"]
    assert listed["totalCount"] == 2
    newest, oldest = (e["node"] for e in listed["edges"])
    assert (newest["device"]["name"], newest["thresholdDays"], newest["severity"]) == (
        "second",
        30,
        "WARNING",
    )
    assert oldest["message"].startswith("Certificate first expires in 5 days (")
    page = (await api.ok(ALERTS, first=1))["alerts"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = (await api.ok(ALERTS, first=1, after=page["pageInfo"]["endCursor"]))["alerts"]
    assert [e["node"]["id"] for e in rest["edges"]] == [oldest["id"]]
    only = (await api.ok(ALERTS, filter={"deviceId": first}))["alerts"]
    assert [e["node"]["device"]["id"] for e in only["edges"]] == [first]

    acked = (await api.ok(ACK, id=oldest["id"]))["acknowledgeAlert"]
    assert acked == {"alert": {"id": oldest["id"], "state": "ACKNOWLEDGED"}, "errors": []}
    open_ = (await api.ok(ALERTS, filter={"state": "OPEN"}))["alerts"]
    assert [e["node"]["id"] for e in open_["edges"]] == [newest["id"]]

    muted = (await api.ok(MUTE, id=second, muted=True))["setDeviceAlertsMuted"]
    assert muted == {"device": {"id": second, "alertsMuted": True}, "errors": []}
    shown = (await api.ok(DEVICE_ALERTS, id=second))["device"]
    assert shown == {"alertsMuted": True, "alerts": [{"kind": "EXPIRING", "thresholdDays": 30}]}


async def test_users_see_and_manage_alerts_of_their_organizations_only(
    api: GraphQLClient, services: Services
) -> None:
    customer = await helpers.organization(api, "Customer", "CUSTOMER")
    vendor = await helpers.organization(api, "Vendor", "VENDOR")
    await _expiring_device(api, customer, "mine")
    hidden = await _expiring_device(api, vendor, "hidden")
    await _channel(
        api, name="vendor mail", kind="EMAIL", organizationId=vendor, emailTo=["v@x.org"]
    )
    await _channel(api, name="global", kind="EMAIL", emailTo=["g@x.org"])
    sweep(services.engine)
    reader = await make_user(api, "reader", edit=False)
    editor = await make_user(api, "editor")

    names = [e["node"]["device"]["name"] for e in (await reader.ok(ALERTS))["alerts"]["edges"]]
    assert names == ["mine"]
    assert (await reader.ok(CHANNELS))["notificationChannels"] == []
    hidden_alert = (await api.ok(ALERTS, filter={"deviceId": hidden}))["alerts"]["edges"][0]
    refused = (await editor.ok(ACK, id=hidden_alert["node"]["id"]))["acknowledgeAlert"]
    assert [e["code"] for e in refused["errors"]] == ["NOT_FOUND"]
    mine = (await reader.ok(ALERTS))["alerts"]["edges"][0]["node"]["id"]
    forbidden = (await reader.ok(ACK, id=mine))["acknowledgeAlert"]
    assert [e["code"] for e in forbidden["errors"]] == ["FORBIDDEN"]

    no_edit = await _channel(
        reader, name="x", kind="EMAIL", organizationId=customer, emailTo=["a@x.org"]
    )
    assert [e["code"] for e in no_edit["errors"]] == ["FORBIDDEN"]
    no_global = await _channel(editor, name="x", kind="EMAIL", emailTo=["a@x.org"])
    assert [e["code"] for e in no_global["errors"]] == ["FORBIDDEN"]
    no_policy = (await editor.ok(POLICY, input={"failuresBeforeAlert": 2}))["setAlertPolicy"]
    assert [e["code"] for e in no_policy["errors"]] == ["FORBIDDEN"]
    own = await _channel(
        editor, name="own", kind="EMAIL", organizationId=customer, emailTo=["a@x.org"]
    )
    assert own["errors"] == []
    assert [c["name"] for c in (await editor.ok(CHANNELS))["notificationChannels"]] == ["own"]


async def test_test_notification_channel_sends_now_or_says_why(api: GraphQLClient) -> None:
    org = await helpers.organization(api)
    with http_receiver() as receiver:
        hook = await _channel(
            api, name="hook", kind="WEBHOOK", organizationId=org, url=receiver.url
        )
        channel_id = hook["channel"]["id"]
        sent = (await api.ok(TEST, id=channel_id))["testNotificationChannel"]
        assert sent == {"channel": {"name": "hook"}, "errors": []}
        (request,) = receiver.requests
        assert b'"type":"alert.test"' in request.body

        receiver.status = 503
        failed = (await api.ok(TEST, id=channel_id))["testNotificationChannel"]
    assert failed["channel"] is None
    (error,) = failed["errors"]
    assert error["code"] == "NOTIFICATION_FAILED"
    assert error["message"] == "The test message was not delivered: the webhook answered HTTP 503"
    assert hook["secret"] not in str(failed)

    deleted = (await api.ok(DELETE, id=channel_id))["deleteNotificationChannel"]
    assert deleted == {"channel": {"id": channel_id, "enabled": False}, "errors": []}
    assert (await api.ok(TEST, id=channel_id))["testNotificationChannel"]["errors"][0][
        "code"
    ] == "NOT_FOUND"
