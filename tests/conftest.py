"""Shared fixtures: a fresh database per test, local network servers, the API client."""

from __future__ import annotations

import functools
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
from tests.fakes.rdap_server import FakeRdapServer
from tests.fakes.tls_server import (  # noqa: F401 (fixtures)
    DEFAULT,
    FakeTlsServer,
    ServedCertificate,
    closed_port,
    default_certificate,
    non_tls_server,
    served,
    silent_server,
    standard_certificates,
    tls_server,
)
from tests.fakes.whois_server import FakeWhoisServer
from tests.support.database import fresh_database
from tracking.core.settings import Settings
from tracking.probes import rdap as rdap_module
from tracking.probes import whois as whois_module
from tracking.refresh.services import Services
from tracking.wiring import build_services

ADMIN_TOKEN = "test-admin-token"


@pytest.fixture(autouse=True)
def _fresh_registry_caches() -> Iterator[None]:
    """The RDAP bootstrap and WHOIS referral caches live per process; a test's servers (and
    ports, which the OS reuses) must never meet another test's cached answers."""
    rdap_module.clear_bootstrap_cache()
    whois_module.clear_referral_cache()
    yield
    rdap_module.clear_bootstrap_cache()
    whois_module.clear_referral_cache()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh, empty schema: SQLite by default, PostgreSQL with DSTRACK_TEST_DATABASE_URL."""
    with fresh_database(os.environ.get("DSTRACK_TEST_DATABASE_URL"), tmp_path) as engine:
        yield engine


@dataclass
class World:
    """The local internet of a test: a DNS server, a TLS server with SNI, RDAP and WHOIS.

    ``*.test`` names of the standard TLS scenarios resolve to 127.0.0.1. Domains are added per
    test with :meth:`add_domain` (DNS records; RDAP/WHOIS answers go on ``rdap``/``whois``).
    """

    dns: DnsServer
    tls: FakeTlsServer
    rdap: FakeRdapServer
    whois: FakeWhoisServer

    def add_domain(self, domain: str, *, www: bool = True, apex_address: bool = True) -> None:
        """Realistic DNS records for ``domain`` (its A records point at the local TLS server)."""
        records: dict[str, Any] = {
            "SOA": f"ns1.{domain}. hostmaster.{domain}. 2026112701 7200 3600 1209600 300",
            "NS": [f"ns1.{domain}.", f"ns2.{domain}."],
            "MX": (3600, [f"10 mail.{domain}.", f"20 mail2.{domain}."]),
            "TXT": '"v=spf1 -all"',
            "CAA": '0 issue "letsencrypt.org"',
            "TTL": 300,
        }
        if apex_address:
            records["A"] = "127.0.0.1"
        zone: dict[str, dict[str, Any]] = {
            f"{domain}.": records,
            f"_dmarc.{domain}.": {"TXT": '"v=DMARC1; p=reject"'},
        }
        if www:
            zone[f"www.{domain}."] = {"CNAME": f"{domain}."} if apex_address else {"A": "127.0.0.1"}
        self.dns.load(zone, origin=f"{domain}.")

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
    certificates = {
        **standard_certificates(),
        **{name: _domain_certificate(name) for name in DOMAIN_CERTIFICATES},
    }
    with (
        DnsServer(zone) as dns,
        FakeTlsServer(certificates, default_certificate()) as tls,
        FakeRdapServer() as rdap,
        FakeWhoisServer() as whois,
    ):
        yield World(dns=dns, tls=tls, rdap=rdap, whois=whois)


# Names the local TLS server has a certificate for, besides the standard scenarios.
DOMAIN_CERTIFICATES = ("google.com", "www.example.com", "apache.org", "amazon.co.uk")


@functools.cache
def _domain_certificate(name: str) -> ServedCertificate:
    ca = pki.test_ca()
    return served(ca.leaf(name, dns_names=[name, f"*.{name}"]), ca.intermediate)


@pytest.fixture
def settings(tmp_path: Path, world: World) -> Settings:
    return Settings(
        database_url="(the engine fixture's)",
        data_dir=tmp_path / "data",
        admin_token=ADMIN_TOKEN,
        dns_nameservers=(world.dns.nameserver,),
        whois_server=world.whois.address,
        rdap_bootstrap_url=world.rdap.bootstrap_url,
        allow_private_targets=True,
        probe_timeout_s=1.0,
        domain_tls_port=world.tls_port,
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
