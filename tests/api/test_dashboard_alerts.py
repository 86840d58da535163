"""The dashboard's open alerts panel in Chromium, against a stand-in GraphQL server that has the
alerts surface the product contract promises (this server's schema plus that surface, executed
by graphql-core over canned data). Until dstrack raises alerts itself this is what exercises
the list and its Acknowledge buttons; test_dashboard.py does it again on the real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema, graphql_sync
from playwright.sync_api import Browser, Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api import dashboard
from api.schema import schema
from tests.api.dashboard_support import (  # noqa: F401 (fixture)
    TIMEOUT_MS,
    LiveServer,
    browser_fixture,
    needs_chromium,
)

pytestmark = needs_chromium
expect.set_options(timeout=TIMEOUT_MS)

TOKEN = "stand-in-token"
ALERTS_SDL = Path(__file__).with_name("contract_alerts.graphql").read_text()
ORGANIZATIONS = {"org-acme": "Acme", "org-globex": "Globex"}


def _alert(pk: str, org: str, severity: str, message: str) -> dict[str, Any]:
    return {
        "id": pk,
        "kind": "EXPIRING",
        "severity": severity,
        "state": "OPEN",
        "message": message,
        "createdAt": "2030-01-07T08:30:00+00:00",
        "device": {
            "id": f"device-{pk}",
            "name": message.split()[1],
            "organization": {"id": org, "name": ORGANIZATIONS[org]},
        },
    }


class StandIn:
    """The state and resolvers of the stand-in server."""

    def __init__(self) -> None:
        self.alerts = [
            _alert(
                "a1", "org-acme", "CRITICAL", "Certificate mail.acme.example expired on 2030-01-05"
            ),
            _alert(
                "a2", "org-acme", "WARNING", "Domain acme.example expires in 14 days (2030-01-21)"
            ),
            _alert(
                "a3", "org-globex", "WARNING", "Certificate vpn.globex.example expires in 7 days"
            ),
            _alert("locked", "org-globex", "INFO", "Certificate old.globex.example was replaced"),
        ]
        self.acknowledged: list[str] = []
        sdl = schema.as_str()
        self.schema = build_schema(sdl if "alerts(" in sdl else sdl + ALERTS_SDL)

    def query_root(self) -> dict[str, Any]:
        return {
            "me": {"name": "admin", "securityLevel": {"name": "Administrator"}},
            "organizations": lambda info, **args: {
                "edges": [
                    {"cursor": pk, "node": {"id": pk, "name": name}}
                    for pk, name in ORGANIZATIONS.items()
                ],
                "pageInfo": {"hasNextPage": False, "endCursor": "org-globex"},
            },
            "devices": lambda info, **args: {
                "totalCount": 0,
                "edges": [],
                "pageInfo": {"hasNextPage": False, "endCursor": None},
            },
            "expiryForecast": lambda info, **args: [
                {
                    "weekStart": f"2030-{1 + i // 4:02d}-{1 + 7 * (i % 4):02d}T00:00:00+00:00",
                    "count": 0,
                }
                for i in range(args["weeks"])
            ],
            "alerts": self.open_alerts,
        }

    def open_alerts(self, info: Any, **args: Any) -> dict[str, Any]:
        wanted = args.get("filter") or {}
        found = [
            alert
            for alert in self.alerts
            if alert["state"] == wanted.get("state", alert["state"])
            and alert["device"]["organization"]["id"]
            == wanted.get("organizationId", alert["device"]["organization"]["id"])
        ][: args.get("first") or 20]
        edges = [{"cursor": alert["id"], "node": alert} for alert in found]
        return {"totalCount": len(found), "edges": edges, "pageInfo": {"hasNextPage": False}}

    def acknowledge(self, info: Any, id: str) -> dict[str, Any]:
        (alert,) = [alert for alert in self.alerts if alert["id"] == id]
        if id == "locked":
            error = {"field": None, "code": "FORBIDDEN", "message": "You may not acknowledge it."}
            return {"alert": None, "errors": [error]}
        alert["state"] = "ACKNOWLEDGED"
        self.acknowledged.append(id)
        return {"alert": alert, "errors": []}

    async def graphql(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"errors": [{"message": "token"}]}, status_code=401)
        body = json.loads(await request.body())
        is_mutation = body["query"].lstrip().startswith("mutation")
        result = graphql_sync(
            self.schema,
            body["query"],
            root_value={"acknowledgeAlert": self.acknowledge} if is_mutation else self.query_root(),
            variable_values=body.get("variables"),
        )
        assert not result.errors, result.errors  # the dashboard sent a valid operation
        return JSONResponse({"data": result.data})


@pytest.fixture
def stand_in() -> Iterator[tuple[StandIn, str]]:
    server = StandIn()
    app = Starlette(routes=[*dashboard.routes, Route("/graphql", server.graphql, methods=["POST"])])
    with LiveServer(app) as live:
        yield server, live.origin


@pytest.fixture
def page(browser: Browser, stand_in: tuple[StandIn, str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.goto(stand_in[1] + "/")
    opened.get_by_test_id("token-input").fill(TOKEN)
    opened.get_by_test_id("token-submit").click()
    yield opened
    context.close()
    assert problems == []


def test_open_alerts_are_listed_with_their_device_and_organization(page: Page) -> None:
    items = page.get_by_test_id("alerts-list").locator("li")
    expect(items).to_have_count(4)
    expect(page.locator("#alerts-count")).to_have_text("(4)")
    expect(items.first).to_contain_text("Critical Certificate mail.acme.example expired on")
    expect(items.first).to_contain_text("mail.acme.example · Acme · raised 2030-01-07 08:30 UTC")
    expect(items.nth(2)).to_contain_text("Warning")
    expect(items.first.get_by_test_id("ack-button")).to_have_accessible_name(
        "Acknowledge: Certificate mail.acme.example expired on 2030-01-05"
    )

    page.get_by_test_id("org-filter").select_option(label="Globex")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("vpn.globex.example")


def test_acknowledge_removes_the_alert_and_says_so(
    page: Page, stand_in: tuple[StandIn, str]
) -> None:
    server = stand_in[0]
    items = page.get_by_test_id("alerts-list").locator("li")
    expect(items).to_have_count(4)

    items.first.get_by_test_id("ack-button").click()

    expect(items).to_have_count(3)
    expect(page.get_by_test_id("status")).to_have_text(
        "Alert acknowledged: Certificate mail.acme.example expired on 2030-01-05"
    )
    assert server.acknowledged == ["a1"]
    # The keyboard stays in the list: on the next alert's button.
    expect(items.first.get_by_test_id("ack-button")).to_be_focused()
    page.keyboard.press("Enter")
    expect(items).to_have_count(2)
    assert server.acknowledged == ["a1", "a2"]

    # An acknowledgement the server refuses leaves the alert and shows why.
    items.last.get_by_test_id("ack-button").click()
    expect(page.get_by_test_id("problem")).to_have_text("You may not acknowledge it.")
    expect(items).to_have_count(2)

    items.first.get_by_test_id("ack-button").click()
    expect(items).to_have_count(1)
    page.reload()  # what the server says now
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("old.globex.example")
