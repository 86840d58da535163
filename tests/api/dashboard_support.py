"""What the dashboard's browser tests (and the screenshot script) need: the real app served by
uvicorn on a free loopback port, Debian's Chromium driven by Playwright, a GraphQL client."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Playwright, sync_playwright
from starlette.applications import Starlette

from tests.api.expiry_support import pem_expiring_at

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DAY = dt.timedelta(days=1)


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium (Playwright never downloads a browser here). Each launch gets a fresh
    temporary profile (user-data dir) from Playwright, removed when the browser closes."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)",
)
TIMEOUT_MS = 20_000  # the machine may be busy


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Browser]:
    """One Chromium per test module; each test opens its own context (no shared storage)."""
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


class LiveServer:
    """``app`` served by uvicorn in a thread on 127.0.0.1, on a port the OS picks."""

    def __init__(self, app: Starlette) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.origin = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", http="h11", ws="none", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()


class Api:
    """A synchronous GraphQL client of the live server."""

    def __init__(self, origin: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=origin, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def close(self) -> None:
        self.http.close()

    def ok(self, query: str, **variables: Any) -> dict[str, Any]:
        body = self.http.post("/graphql", json={"query": query, "variables": variables}).json()
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def payload(self, query: str, **variables: Any) -> dict[str, Any]:
        """The one mutation payload of ``query``, which must have no errors."""
        (payload,) = self.ok(query, **variables).values()
        assert payload["errors"] == [], payload["errors"]
        result: dict[str, Any] = payload
        return result

    def organization(self, name: str, type: str = "CUSTOMER") -> str:
        payload = self.payload(CREATE_ORGANIZATION, name=name, type=type)
        return str(payload["organization"]["id"])

    def device(self, org: str, category: str, **fields: Any) -> dict[str, Any]:
        fields.update(organizationId=org, category=category)
        device: dict[str, Any] = self.payload(CREATE_DEVICE, input=fields)["device"]
        return device

    def certificate(self, org: str, name: str, days: float, **fields: Any) -> str:
        """A PEM certificate device expiring ``days`` days (and 12 hours, so that a whole
        number of days is left for a while) from now."""
        not_after = dt.datetime.now(dt.UTC) + days * DAY + DAY / 2
        pem = pem_expiring_at(name, not_after)
        return str(self.device(org, "SSL_CERTIFICATE", name=name, sslSource=pem, **fields)["id"])

    def has_query_field(self, name: str) -> bool:
        fields = self.ok('{ __type(name: "Query") { fields { name } } }')["__type"]["fields"]
        return any(field["name"] == name for field in fields)


CREATE_ORGANIZATION = """
mutation($name: String!, $type: OrganizationType!) {
  createOrganization(input: {name: $name, type: $type}) {
    organization { id } errors { code message } } }"""
CREATE_DEVICE = """
mutation($input: CreateDeviceInput!) {
  createDevice(input: $input) {
    device { id name expiresAt lastUpdateError } errors { field code message } } }"""
