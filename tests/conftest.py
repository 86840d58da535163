"""Shared fixtures: a fresh database per test, local network servers, the API client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from api.app import create_app
from tests.fakes import pki
from tests.fakes.dns_server import DnsServer, dns_server  # noqa: F401 (fixture)
from tests.fakes.tls_server import (  # noqa: F401 (fixtures)
    DEFAULT,
    FakeTlsServer,
    closed_port,
    non_tls_server,
    silent_server,
    standard_certificates,
    tls_server,
)
from tests.support.database import fresh_database
from tracking.services import Services, build_services
from tracking.settings import Settings


ADMIN_TOKEN = "test-admin-token"  # noqa: S105 - a test credential


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh, empty schema: SQLite by default, PostgreSQL with DSTRACK_TEST_DATABASE_URL."""
    with fresh_database(os.environ.get("DSTRACK_TEST_DATABASE_URL"), tmp_path) as engine:
        yield engine


@dataclass
class World:
    """The local internet of a test: a DNS server for *.test and a TLS server with SNI."""

    dns: DnsServer
    tls: FakeTlsServer

    @property
    def tls_port(self) -> int:
        return self.tls.address[1]

    def host(self, name: str) -> str:
        """An SSL Source for a name served by the TLS server."""
        return f"{name}:{self.tls_port}"


@pytest.fixture
def world() -> Iterator[World]:
    zone: dict[str, dict[str, Any]] = {
        "test.": {"SOA": "ns.test. hostmaster.test. 1 3600 600 86400 60", "NS": "ns.test."},
        "ns.test.": {"A": "127.0.0.1"},
    }
    for name in (*standard_certificates(), DEFAULT, "no-tls.test", "silent.test"):
        zone[f"{name}."] = {"A": "127.0.0.1"}
    with DnsServer(zone) as dns, FakeTlsServer.standard() as tls:
        yield World(dns=dns, tls=tls)


@pytest.fixture
def settings(tmp_path: Path, world: World) -> Settings:
    return Settings(
        database_url="(the engine fixture's)",
        data_dir=tmp_path / "data",
        admin_token=ADMIN_TOKEN,
        dns_nameservers=(world.dns.nameserver,),
        allow_private_targets=True,
        probe_timeout_s=1.0,
    )


@pytest.fixture
def services(settings: Settings, engine: Engine) -> Services:
    built = build_services(replace(settings, database_url=str(engine.url)), engine)
    built.roots_override = [pki.test_ca().root.cert]
    return built


class GraphQLClient:
    """Posts GraphQL over HTTP to the app, with a bearer token."""

    def __init__(self, http: httpx.AsyncClient, token: str | None) -> None:
        self.http = http
        self.token = token

    async def post(self, query: str, token: str | None = None, **variables: Any) -> httpx.Response:
        token = token or self.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )

    async def execute(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.post(query, **variables)
        body: dict[str, Any] = response.json()
        return body

    async def ok(self, query: str, **variables: Any) -> dict[str, Any]:
        """The data of a query that must succeed without any GraphQL error."""
        body = await self.execute(query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def as_user(self, token: str) -> GraphQLClient:
        return GraphQLClient(self.http, token)


@asynccontextmanager
async def api_client(services: Services) -> AsyncIterator[GraphQLClient]:
    """A client of a freshly built app over ``services``, as the administrator."""
    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dstrack.test") as http:
        yield GraphQLClient(http, ADMIN_TOKEN)


def services_with(services: Services, **changes: Any) -> Services:
    """The same database and trust roots, with other settings (and probes built for them)."""
    rebuilt = build_services(replace(services.settings, **changes), services.engine)
    rebuilt.roots_override = services.roots_override
    return rebuilt


@pytest.fixture
async def api(services: Services) -> AsyncIterator[GraphQLClient]:
    async with api_client(services) as client:
        yield client
