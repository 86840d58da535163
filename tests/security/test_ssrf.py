"""Server-side request forgery: what users type never makes dstrack connect into private space.

The guard (README: "Private-address guard") applies to targets derived from user input - certificate
hosts, a domain's own web server, servers named by registry answers (RDAP redirects and links, WHOIS
referrals) - and not to the servers an operator configures (RDAP bootstrap, WHOIS server, DNS
servers), which in these tests all live on 127.0.0.1 and must keep working. Every network read also
has a time and a size limit.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from tests.conftest import GraphQLClient, World, api_client, services_with
from tests.fakes import pki
from tests.fakes.rdap_server import FIXTURES, RdapFault
from tests.fakes.tls_server import FakeTlsServer, ServedCertificate, served
from tests.fakes.whois_server import FakeWhoisServer, WhoisFault
from tests.security.support import CREATE_DEVICE, CREATE_ORGANIZATION, stored_text
from tracking.core.errors import ErrorCode, ValidationError
from tracking.core.registration import LookupFailureKind, RegistryLookupError
from tracking.core.settings import Settings
from tracking.core.sources import HostSource, parse_ssl_source
from tracking.probes import guard, whois
from tracking.probes.tls import RealTlsProbe
from tracking.refresh.services import Services

PRIVATE = "PRIVATE_ADDRESS_REFUSED"
URI = "INVALID_URI_FORMAT"
PUBLIC_ADDRESS = "8.8.8.8"  # never really contacted: see ``connects``
RDAP_DOMAINS = FIXTURES / "rdap" / "domains"
WHOIS_RAW = FIXTURES / "whois" / "raw"
WHOIS_ADAPTED = FIXTURES / "whois" / "adapted"


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address the TLS probe opens a TCP connection to. Public addresses are refused
    here, as if unreachable, so that no test ever leaves the machine."""
    attempts: list[str] = []
    original = RealTlsProbe._connect

    async def recording(self: RealTlsProbe, address: str, port: int) -> Any:
        attempts.append(address)
        if guard.is_public_address(address):
            raise ConnectionRefusedError(f"{address} is the internet, not reachable in tests")
        return await original(self, address, port)

    monkeypatch.setattr(RealTlsProbe, "_connect", recording)
    return attempts


@pytest.fixture
def guarded(services: Services) -> Services:
    """The test world, with the private-address guard on (the production default)."""
    return services_with(services, allow_private_targets=False)


@pytest.fixture
async def guarded_api(guarded: Services) -> AsyncIterator[GraphQLClient]:
    async with api_client(guarded) as client:
        yield client


@pytest.fixture
def names(world: World) -> World:
    """Names whose DNS answers point into private space, or partly."""
    world.dns.set_records("v6only.test.", "AAAA", "::1")
    world.dns.set_records("mixed.test.", "A", [PUBLIC_ADDRESS, "127.0.0.1"])
    world.dns.set_records("metadata.test.", "A", "169.254.169.254")
    world.dns.set_records("localhost.", "A", "127.0.0.1")
    return world


async def _organization(api: GraphQLClient) -> str:
    payload = (await api.ok(CREATE_ORGANIZATION, input={"name": "Acme", "type": "CUSTOMER"}))[
        "createOrganization"
    ]
    return str(payload["organization"]["id"])


async def _create(api: GraphQLClient, org: str, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (
        await api.ok(CREATE_DEVICE, input={"organizationId": org, **fields})
    )["createDevice"]
    return payload


def _codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


# --- certificate hosts -------------------------------------------------------------------------

# (SSL source, the codes it may be refused with). {port} is the local TLS server's.
PRIVATE_SOURCES = [
    ("good.test:{port}", {PRIVATE}),  # a name whose DNS answer is 127.0.0.1
    ("v6only.test:{port}", {PRIVATE}),  # a name with only AAAA ::1
    ("metadata.test", {PRIVATE}),  # a name for the cloud metadata address
    ("127.0.0.1:{port}", {PRIVATE}),
    ("https://127.0.0.1:{port}/login", {PRIVATE}),
    ("[::1]:{port}", {PRIVATE}),
    ("[::ffff:127.0.0.1]:{port}", {PRIVATE}),  # IPv4-mapped
    ("[::127.0.0.1]:{port}", {PRIVATE}),  # IPv4-compatible (deprecated)
    ("[64:ff9b::7f00:1]:{port}", {PRIVATE}),  # NAT64 of 127.0.0.1
    ("[2002:7f00:1::1]:{port}", {PRIVATE}),  # 6to4 of 127.0.0.1
    ("[::]:{port}", {PRIVATE}),
    ("0.0.0.0:{port}", {PRIVATE}),
    ("169.254.169.254", {PRIVATE}),
    ("[fe80::1]", {PRIVATE}),
    ("[fe80::1%25lo]", {URI}),  # a zone id
    ("[fd00::1]", {PRIVATE}),
    ("[fec0::1]", {PRIVATE}),  # site-local (deprecated, still routed in places)
    ("10.0.0.1", {PRIVATE}),
    ("172.16.0.1", {PRIVATE}),
    ("192.168.1.1", {PRIVATE}),
    ("100.64.0.1", {PRIVATE}),  # carrier-grade NAT
    ("198.18.0.1", {PRIVATE}),
    ("224.0.0.1", {PRIVATE}),
    ("255.255.255.255", {PRIVATE}),
    ("2130706433:{port}", {URI}),  # decimal
    ("0177.0.0.1:{port}", {URI}),  # octal
    ("127.1:{port}", {URI}),  # short
    ("0x7f.0.0.1:{port}", {URI}),
    ("017700000001:{port}", {URI}),
    ("user@127.0.0.1:{port}", {URI}),
]


NOT_PUBLIC = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "10.1.2.3",
    "100.64.0.1",
    "169.254.169.254",
    "172.31.0.1",
    "192.0.0.1",
    "192.0.2.1",
    "192.168.0.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.251",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "::ffff:0:7f00:1",
    "64:ff9b::7f00:1",
    "64:ff9b::a00:1",
    "64:ff9b:1::808:808",
    "2002:7f00:1::1",
    "2002:a00:1::1",
    "2001::7f00:1",
    "2001:db8::1",
    "3fff::1",
    "100::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "ff02::1",
    "5f00::1",
    "not an address",
    "",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


def test_the_guard_knows_private_space() -> None:
    assert [a for a in NOT_PUBLIC if guard.is_public_address(a)] == []
    assert [a for a in PUBLIC if not guard.is_public_address(a)] == []


async def test_private_certificate_hosts_are_refused_and_never_contacted(
    guarded_api: GraphQLClient,
    guarded: Services,
    names: World,
    connects: list[str],
) -> None:
    org = await _organization(guarded_api)
    pem = pki.test_ca().leaf("pem.example").pem
    existing = (await _create(guarded_api, org, category="SSL_CERTIFICATE", sslSource=pem))[
        "device"
    ]["id"]
    before = stored_text(guarded)
    for template, expected in PRIVATE_SOURCES:
        source = template.format(port=names.tls_port)
        created = await _create(guarded_api, org, category="SSL_CERTIFICATE", sslSource=source)
        assert created["device"] is None, source
        assert set(_codes(created)) <= expected and created["errors"], (source, created)
        edited = (
            await guarded_api.ok(
                "mutation($id: ID!, $s: String!) { updateDevice(id: $id, input: {sslSource: $s})"
                " { device { id } errors { code } } }",
                id=existing,
                s=source,
            )
        )["updateDevice"]
        assert edited["device"] is None and set(_codes(edited)) <= expected, source
    assert stored_text(guarded) == before
    assert names.tls.connections == []
    assert [a for a in connects if not guard.is_public_address(a)] == []


async def test_a_name_with_a_public_and_a_private_address_never_reaches_the_private_one(
    guarded_api: GraphQLClient, guarded: Services, names: World, connects: list[str]
) -> None:
    org = await _organization(guarded_api)
    before = stored_text(guarded)
    created = await _create(
        guarded_api, org, category="SSL_CERTIFICATE", sslSource=f"mixed.test:{names.tls_port}"
    )
    assert _codes(created) == [PRIVATE]
    assert connects == [PUBLIC_ADDRESS]  # tried the public one; never the private one
    assert names.tls.connections == []
    assert stored_text(guarded) == before


@pytest.mark.parametrize("source", ["0x7f000001", "2130706433", "0177.0.0.1", "127.1"])
async def test_alternate_notations_through_the_system_resolver_are_refused(
    services: Services, names: World, connects: list[str], source: str
) -> None:
    """getaddrinfo reads 0x7f000001 & co. as 127.0.0.1 (inet_aton): the guard, which judges the
    address actually connected to, refuses them whatever the parser made of the text."""
    system = services_with(services, allow_private_targets=False, dns_nameservers=())
    async with api_client(system) as client:
        org = await _organization(client)
        before = stored_text(system)
        created = await _create(
            client, org, category="SSL_CERTIFICATE", sslSource=f"{source}:{names.tls_port}"
        )
    assert _codes(created) in ([PRIVATE], [URI]), created
    assert names.tls.connections == [] and connects == []
    assert stored_text(system) == before


def test_a_hex_ipv4_number_is_an_address_or_refused() -> None:
    for text in ("0x7f000001", "0x7f000001:8443", "0X7F000001"):
        try:
            parsed = parse_ssl_source(text)
        except ValidationError as error:
            assert error.code == ErrorCode.INVALID_URI_FORMAT
        else:
            assert isinstance(parsed, HostSource) and parsed.host == "127.0.0.1", parsed


async def test_a_host_that_now_resolves_to_private_space_is_refused_on_update(
    api: GraphQLClient, guarded_api: GraphQLClient, names: World, connects: list[str]
) -> None:
    """Created while private targets were allowed (as in a test set-up), updated under the
    guard: the update is refused before any connection."""
    org = await _organization(api)
    device = (
        await _create(api, org, category="SSL_CERTIFICATE", sslSource=names.host("good.test"))
    )["device"]
    seen = len(names.tls.connections)
    connects.clear()
    [result] = (
        await guarded_api.ok(
            "mutation($ids: [ID!]!) { forceUpdate(ids: $ids) { results { errors { code } } } }",
            ids=[device["id"]],
        )
    )["forceUpdate"]["results"]
    assert _codes(result) == [PRIVATE]
    assert len(names.tls.connections) == seen and connects == []


# --- domains -----------------------------------------------------------------------------------

PRIVATE_DOMAINS = [
    "127.0.0.1",
    "[::1]",
    "::1",
    "0.0.0.0",
    "169.254.169.254",
    "10.0.0.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "http://127.0.0.1:8080/",
    "[::ffff:127.0.0.1]",
]


async def test_domains_that_are_addresses_are_refused(
    guarded_api: GraphQLClient, guarded: Services, names: World, connects: list[str]
) -> None:
    org = await _organization(guarded_api)
    before = stored_text(guarded)
    for text in PRIVATE_DOMAINS:
        created = await _create(guarded_api, org, category="DOMAIN", domain=text)
        assert created["device"] is None and _codes(created) == ["INVALID_DOMAIN"], text
    assert stored_text(guarded) == before
    assert connects == [] and names.whois.queries == [] and names.rdap.requests == []


DOMAIN = """
  id domain lastUpdateError children { id } activity { text }
  domainDetails { source registrar dnsRecords { type value } }
"""


@pytest.fixture
def google(names: World) -> World:
    """google.com: real RDAP and WHOIS answers, and DNS pointing its web server at 127.0.0.1."""
    names.rdap.add_domain(
        "google.com", RDAP_DOMAINS / "verisign__google.com.json", registry="rdap.verisign.com"
    )
    names.rdap.add_domain(
        "google.com", RDAP_DOMAINS / "markmonitor__google.com.json", registry="rdap.markmonitor.com"
    )
    names.whois.add("google.com", WHOIS_RAW / "google.com")
    names.add_domain("google.com")
    return names


async def _domain(api: GraphQLClient, org: str, name: str) -> dict[str, Any]:
    payload = (
        await api.ok(
            f"mutation($input: CreateDeviceInput!) {{ createDevice(input: $input) {{"
            f" device {{ {DOMAIN} }} errors {{ code }} }} }}",
            input={"organizationId": org, "category": "DOMAIN", "domain": name},
        )
    )["createDevice"]
    assert payload["errors"] == [], payload
    device: dict[str, Any] = payload["device"]
    return device


async def test_a_domain_pointing_at_private_space_is_saved_without_contacting_it(
    guarded_api: GraphQLClient, google: World, connects: list[str]
) -> None:
    """A well-formed domain is saved whatever its look-ups give. Its own web
    server (127.0.0.1 here) is user-derived and refused; the operator's RDAP, WHOIS and DNS
    servers (also on 127.0.0.1) are not guarded and answer."""
    org = await _organization(guarded_api)
    device = await _domain(guarded_api, org, "google.com")
    assert device["children"] == []  # no SSL child: its certificate was not fetched
    assert google.tls.connections == []
    assert [a for a in connects if not guard.is_public_address(a)] == []
    details = device["domainDetails"]
    assert details["source"] == "RDAP" and details["registrar"] == "MarkMonitor Inc."
    assert {"A", "NS", "MX"} <= {r["type"] for r in details["dnsRecords"]}
    assert any("No SSL certificate" in n["text"] for n in device["activity"])


async def test_an_rdap_redirect_into_private_space_is_not_followed(
    guarded_api: GraphQLClient, google: World
) -> None:
    google.rdap.set_fault("google.com", RdapFault.REDIRECT_ELSEWHERE)  # to http://localhost/...
    org = await _organization(guarded_api)
    device = await _domain(guarded_api, org, "google.com")
    assert not any(path.startswith("/redirected/") for path in google.rdap.requests)
    # The operator's WHOIS server answered instead.
    assert device["domainDetails"]["source"] == "WHOIS"
    assert google.whois.queries == ["google.com"]


# WHOIS referrals: the referring servers must be on the internet for a referral to be followed,
# so here 127.0.0.2 and 127.0.0.3 play "public" servers; 127.0.0.1 stays private.
PLAYING_PUBLIC = frozenset({"127.0.0.2", "127.0.0.3"})


@pytest.fixture
def internet(monkeypatch: pytest.MonkeyPatch) -> None:
    real = guard.is_public_address
    monkeypatch.setattr(guard, "is_public_address", lambda a: a in PLAYING_PUBLIC or real(a))


def _referral_settings() -> Settings:
    return Settings(allow_private_targets=False, whois_server=None, probe_timeout_s=1.0)


@pytest.mark.usefixtures("internet")
async def test_a_whois_referral_to_a_private_address_is_refused() -> None:
    with (
        FakeWhoisServer(referrals={"io": "whois.nic.io"}, host="127.0.0.2") as iana,
        FakeWhoisServer({"google.io": WHOIS_RAW / "google.io"}) as registry,
    ):
        book = {"whois.iana.org": iana.address, "whois.nic.io": registry.address}
        with pytest.raises(RegistryLookupError) as caught:
            await whois.query_whois("google.io", _referral_settings(), address_book=book)
    assert caught.value.kind == LookupFailureKind.PRIVATE_ADDRESS
    assert caught.value.code == ErrorCode.PRIVATE_ADDRESS_REFUSED
    assert iana.queries == ["io"]
    assert registry.queries == []  # never connected


@pytest.mark.usefixtures("internet")
async def test_a_registrar_referral_to_a_private_address_is_not_followed() -> None:
    with (
        FakeWhoisServer(referrals={"net": "whois.verisign-grs.com"}, host="127.0.0.2") as iana,
        FakeWhoisServer({"he.net": WHOIS_ADAPTED / "he.net.registry"}, host="127.0.0.3") as reg,
        FakeWhoisServer({"he.net": WHOIS_RAW / "he.net"}) as registrar,
    ):
        book = {
            "whois.iana.org": iana.address,
            "whois.verisign-grs.com": reg.address,
            "whois.networksolutions.com": registrar.address,  # 127.0.0.1
        }
        answer = await whois.query_whois("he.net", _referral_settings(), address_book=book)
    assert answer.server == "whois.verisign-grs.com"
    assert answer.registrar_server is None and answer.registrar_text is None
    assert registrar.queries == []


async def test_the_operators_whois_server_is_not_guarded(world: World) -> None:
    world.whois.add("google.io", WHOIS_RAW / "google.io")
    settings = Settings(allow_private_targets=False, whois_server=world.whois.address)
    answer = await whois.query_whois("google.io", settings)
    assert "google.io" in answer.text.lower()


# --- size and time limits ----------------------------------------------------------------------


@cache
def _huge_chain() -> ServedCertificate:
    ca = pki.test_ca()
    fillers = [
        pki.issue(pki.name(f"Filler CA {i}"), issuer=ca.intermediate, key_slot=5)
        for i in range(200)
    ]
    return served(ca.leaf("huge-chain.test"), *fillers)


@cache
def _huge_certificate() -> ServedCertificate:
    ca = pki.test_ca()
    sans = [f"host-{i:06d}.{'x' * 40}.example" for i in range(40_000)]  # about 2.3 MB of DER
    return served(ca.leaf("huge-cert.test", dns_names=sans), ca.intermediate)


@dataclass
class Huge:
    server: FakeTlsServer
    label: str


@pytest.fixture(params=["200 certificates", "a 2 MB certificate"])
def huge_tls(request: pytest.FixtureRequest) -> Iterator[Huge]:
    chain = _huge_chain() if request.param == "200 certificates" else _huge_certificate()
    with FakeTlsServer({}, chain) as server:
        yield Huge(server, request.param)


async def test_a_huge_certificate_chain_is_cut_off(
    api: GraphQLClient, services: Services, huge_tls: Huge
) -> None:
    """OpenSSL's limit on the Certificate message (100 kB) bounds what the probe reads."""
    org = await _organization(api)
    before = stored_text(services)
    started = time.monotonic()
    created = await _create(
        api, org, category="SSL_CERTIFICATE", sslSource=f"127.0.0.1:{huge_tls.server.port}"
    )
    assert time.monotonic() - started < services.settings.probe_timeout_s
    assert _codes(created) == ["SSL_DETAILS_UNAVAILABLE"], huge_tls.label
    assert stored_text(services) == before
    [connection] = huge_tls.server.connections
    assert connection.handshake_ok is False


@pytest.mark.parametrize("rdap_fault", [RdapFault.HUGE, RdapFault.HUGE_STREAM])
async def test_huge_rdap_and_whois_answers_are_refused(
    api: GraphQLClient, services: Services, google: World, rdap_fault: RdapFault
) -> None:
    google.rdap.set_fault("google.com", rdap_fault)  # 3 MiB, over the 2 MiB cap
    google.whois.set_fault("google.com", WhoisFault.HUGE)  # 300 KiB, over the 256 KiB cap
    org = await _organization(api)
    started = time.monotonic()
    device = await _domain(api, org, "google.com")
    assert time.monotonic() - started < 3 * services.settings.probe_timeout_s
    error = device["lastUpdateError"]
    assert "RDAP: answer larger than 2 MiB" in error
    assert "larger than 256 KiB" in error
    assert device["domainDetails"] is None or device["domainDetails"]["registrar"] is None
    sizes = (
        await api.ok(
            "query($id: ID!) { device(id: $id) { rawFiles { sizeBytes } } }", id=device["id"]
        )
    )["device"]["rawFiles"]
    assert all(raw["sizeBytes"] < 256 * 1024 for raw in sizes)


async def test_slow_registries_are_cut_off_by_the_timeout(
    api: GraphQLClient, services: Services, google: World
) -> None:
    google.rdap.slow_seconds = 3.0
    google.rdap.set_fault("google.com", RdapFault.SLOW)
    google.whois.set_fault("google.com", WhoisFault.SILENT)
    org = await _organization(api)
    started = time.monotonic()
    device = await _domain(api, org, "google.com")
    # Each of RDAP and WHOIS has its own deadline (1 s in the tests).
    assert time.monotonic() - started < 3 * services.settings.probe_timeout_s
    assert "timed out" in device["lastUpdateError"]
