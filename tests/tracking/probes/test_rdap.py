"""RDAP probe against a real local HTTP server serving real registry answers."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.dns_server import DnsServer
from tests.fakes.rdap_server import FIXTURES, IANA_BOOTSTRAP, FakeRdapServer, RdapFault
from tracking.core.errors import ErrorCode
from tracking.core.registration import LookupFailureKind, RegistryLookupError
from tracking.core.settings import Settings
from tracking.probes import rdap

DOMAINS = FIXTURES / "rdap" / "domains"
TIMEOUT = 1.0  # generous: a loaded CI machine took over 0.3 s to answer an HTTP 429


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    rdap.clear_bootstrap_cache()
    yield
    rdap.clear_bootstrap_cache()


@pytest.fixture
def server() -> Iterator[FakeRdapServer]:
    with FakeRdapServer(
        extra_services={"co.uk": "https://rdap.sld-registry.test/"},
        aliases={"rdap.markmonitor.com": "localhost"},  # not the configured host: guarded
    ) as fake:
        fake.add_domain(
            "google.com", DOMAINS / "verisign__google.com.json", registry="rdap.verisign.com"
        )
        fake.add_domain(
            "google.com", DOMAINS / "markmonitor__google.com.json", registry="rdap.markmonitor.com"
        )
        fake.add_domain("amazon.co.uk", DOMAINS / "nominet__amazon.co.uk.json")
        yield fake


def settings_for(fake: FakeRdapServer, *, allow_private: bool = True) -> Settings:
    return Settings(
        rdap_bootstrap_url=fake.bootstrap_url,
        allow_private_targets=allow_private,
        probe_timeout_s=TIMEOUT,
    )


async def failure(domain: str, settings: Settings) -> RegistryLookupError:
    with pytest.raises(RegistryLookupError) as caught:
        await rdap.query_rdap(domain, settings)
    assert caught.value.source == "RDAP"
    return caught.value


async def test_found_at_the_registry_of_the_tld(server: FakeRdapServer) -> None:
    result = await rdap.query_rdap("Google.COM", settings_for(server))
    assert isinstance(result, rdap.RdapAnswer)
    assert result.url == f"{server.url}/rdap.verisign.com/com/v1/domain/google.com"
    assert result.data["handle"] == "2138514_DOMAIN_COM-VRSN"
    assert json.loads(result.text) == result.data  # the body as received
    assert server.requests == ["/dns.json", "/rdap.verisign.com/com/v1/domain/google.com"]


async def test_404_is_no_record(server: FakeRdapServer) -> None:
    result = await rdap.query_rdap("nosuchdomain-dstrack.com", settings_for(server))
    assert result == rdap.RdapNotFound(
        f"{server.url}/rdap.verisign.com/com/v1/domain/nosuchdomain-dstrack.com",
        '{"errorCode": 404, "title": "Not Found"}',  # the body as sent, for the RAW file
    )


async def test_tld_without_rdap_service(server: FakeRdapServer) -> None:
    assert await rdap.query_rdap("google.de", settings_for(server)) == rdap.RdapNoService("de")
    assert await rdap.query_rdap("google.io", settings_for(server)) == rdap.RdapNoService("io")
    assert server.requests == ["/dns.json"]  # one bootstrap fetch, then the cache


async def test_longest_suffix_wins(server: FakeRdapServer) -> None:
    await rdap.query_rdap("amazon.co.uk", settings_for(server))
    await rdap.query_rdap("amazon.uk", settings_for(server))
    assert server.requests[1:] == [
        "/rdap.sld-registry.test/domain/amazon.co.uk",
        "/rdap.nominet.uk/uk/domain/amazon.uk",
    ]


async def test_idn_is_asked_by_its_a_label(server: FakeRdapServer) -> None:
    await rdap.query_rdap("Bücher.com", settings_for(server))
    assert server.requests[-1] == "/rdap.verisign.com/com/v1/domain/xn--bcher-kva.com"


async def test_bootstrap_is_cached(server: FakeRdapServer) -> None:
    settings = settings_for(server)
    await rdap.query_rdap("google.com", settings)
    await rdap.query_rdap("google.com", settings)
    assert server.requests.count("/dns.json") == 1
    rdap.clear_bootstrap_cache()
    await rdap.query_rdap("google.com", settings)
    assert server.requests.count("/dns.json") == 2


async def test_bootstrap_from_a_file(server: FakeRdapServer, tmp_path: Path) -> None:
    path = tmp_path / "dns.json"
    path.write_text(json.dumps(server.bootstrap()), encoding="utf-8")
    settings = Settings(rdap_bootstrap_url=path.as_uri(), probe_timeout_s=TIMEOUT)
    result = await rdap.query_rdap("google.com", settings)
    assert isinstance(result, rdap.RdapAnswer)
    assert "/dns.json" not in server.requests


def test_real_iana_bootstrap() -> None:
    bootstrap = rdap.Bootstrap.from_json(json.loads(IANA_BOOTSTRAP.read_text("utf-8")))
    assert bootstrap.base_url("google.com") == "https://rdap.verisign.com/com/v1/"
    assert bootstrap.base_url("apache.org") == "https://rdap.publicinterestregistry.org/rdap/"
    assert bootstrap.base_url("amazon.co.uk") == "https://rdap.nominet.uk/uk/"
    assert bootstrap.base_url("kg.kg") == "http://rdap.cctld.kg/"  # only HTTP published
    assert bootstrap.base_url("google.de") is None
    assert bootstrap.base_url("google.io") is None


def test_bootstrap_prefers_https_and_skips_junk() -> None:
    bootstrap = rdap.Bootstrap.from_json(
        {"services": [[["test"], ["http://a.test/rdap", "https://b.test/rdap"]], "junk", [1, 2]]}
    )
    assert bootstrap.base_url("x.test") == "https://b.test/rdap/"


async def test_missing_bootstrap_file_is_a_failure(tmp_path: Path) -> None:
    settings = Settings(rdap_bootstrap_url=(tmp_path / "none.json").as_uri())
    error = await failure("google.com", settings)
    assert error.kind == LookupFailureKind.CONNECTION
    assert "bootstrap" in error.message


async def test_bootstrap_server_error(server: FakeRdapServer) -> None:
    server.bootstrap_fault = RdapFault.SERVER_ERROR
    error = await failure("google.com", settings_for(server))
    assert error.message == f"bootstrap {server.bootstrap_url}: HTTP 500 Internal Server Error"


async def test_invalid_bootstrap(server: FakeRdapServer) -> None:
    server.bootstrap_fault = RdapFault.INVALID_JSON
    error = await failure("google.com", settings_for(server))
    assert error.kind == LookupFailureKind.INVALID_ANSWER


@pytest.mark.parametrize(
    ("fault", "kind", "message"),
    [
        (RdapFault.RATE_LIMITED, LookupFailureKind.RATE_LIMITED, "HTTP 429 Too Many Requests"),
        (RdapFault.SERVER_ERROR, LookupFailureKind.HTTP_STATUS, "HTTP 500 Internal Server Error"),
        (RdapFault.SLOW, LookupFailureKind.TIMEOUT, f"timed out after {TIMEOUT:g} s"),
        (RdapFault.INVALID_JSON, LookupFailureKind.INVALID_ANSWER, "the answer is not valid JSON"),
        (RdapFault.HUGE, LookupFailureKind.TOO_LARGE, "answer larger than 2 MiB"),
        (RdapFault.HUGE_STREAM, LookupFailureKind.TOO_LARGE, "answer larger than 2 MiB"),
        (RdapFault.REDIRECT_LOOP, LookupFailureKind.INVALID_ANSWER, "more than 3 redirects"),
    ],
)
async def test_faults_are_failures(
    server: FakeRdapServer, fault: RdapFault, kind: str, message: str
) -> None:
    server.set_fault("google.com", fault)
    started = time.monotonic()
    error = await failure("google.com", settings_for(server))
    assert (error.kind, error.message) == (kind, message)
    assert error.code == ErrorCode.LOOKUP_FAILED
    assert time.monotonic() - started < 2


async def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await failure("google.com", Settings(rdap_bootstrap_url=f"http://127.0.0.1:{port}/"))
    assert error.kind == LookupFailureKind.CONNECTION
    assert error.message.startswith(f"cannot connect to 127.0.0.1:{port}")


async def test_redirect_is_followed(server: FakeRdapServer) -> None:
    server.set_fault("google.com", RdapFault.REDIRECT)
    result = await rdap.query_rdap("google.com", settings_for(server))
    assert isinstance(result, rdap.RdapAnswer)
    assert result.url == f"{server.url}/redirected/google.com"


async def test_redirect_to_another_host_is_followed(server: FakeRdapServer) -> None:
    server.set_fault("google.com", RdapFault.REDIRECT_ELSEWHERE)
    result = await rdap.query_rdap("google.com", settings_for(server))
    assert isinstance(result, rdap.RdapAnswer)
    assert result.url == f"http://localhost:{server.port}/redirected/google.com"


async def test_redirect_into_a_private_address_is_refused(server: FakeRdapServer) -> None:
    # The configured bootstrap and base URL (loopback here) are trusted; another host is not.
    server.set_fault("google.com", RdapFault.REDIRECT_ELSEWHERE)
    error = await failure("google.com", settings_for(server, allow_private=False))
    assert error.kind == LookupFailureKind.PRIVATE_ADDRESS
    assert error.code == ErrorCode.PRIVATE_ADDRESS_REFUSED
    assert error.message.startswith("refused to connect to localhost: ")
    assert "/redirected/google.com" not in server.requests


async def test_redirect_within_the_configured_host_is_trusted(server: FakeRdapServer) -> None:
    server.set_fault("google.com", RdapFault.REDIRECT)
    result = await rdap.query_rdap("google.com", settings_for(server, allow_private=False))
    assert isinstance(result, rdap.RdapAnswer)


@pytest.mark.parametrize("allow_private", [True, False])
async def test_redirect_to_another_port_of_the_registry_is_refused(
    server: FakeRdapServer, allow_private: bool
) -> None:
    """The registry's host is trusted (it comes from the bootstrap), its other ports are not:
    a redirect may not reach another service of the same machine, guard or no guard."""
    with FakeRdapServer() as other:
        other.add_domain("google.com", DOMAINS / "verisign__google.com.json")
        target = f"http://127.0.0.1:{other.port}/redirected/google.com"
        server.redirect("google.com", target)
        error = await failure("google.com", settings_for(server, allow_private=allow_private))
    assert error.kind == LookupFailureKind.INVALID_ANSWER
    assert error.message == f"refusing to follow a redirect to {target}"
    assert other.requests == []


async def test_redirect_to_another_scheme_is_refused(server: FakeRdapServer) -> None:
    target = f"https://127.0.0.1:{server.port}/redirected/google.com"
    server.redirect("google.com", target)
    error = await failure("google.com", settings_for(server))
    assert error.message == f"refusing to follow a redirect to {target}"
    assert "/redirected/google.com" not in server.requests


async def test_redirect_to_another_protocol_is_refused(server: FakeRdapServer) -> None:
    location = f"ftp://127.0.0.1:{server.port}/redirected/google.com"
    server.redirect("google.com", location)
    error = await failure("google.com", settings_for(server))
    assert error.message == f"refusing to follow a redirect to {location}"


async def test_redirect_to_the_bootstrap_port_on_another_host_is_followed(
    server: FakeRdapServer,
) -> None:
    server.redirect("google.com", f"http://localhost:{server.port}/redirected/google.com")
    result = await rdap.query_rdap("google.com", settings_for(server))
    assert isinstance(result, rdap.RdapAnswer)
    assert result.url == f"http://localhost:{server.port}/redirected/google.com"


BOOTSTRAP = "https://data.iana.org/rdap/dns.json"
LOCAL_BOOTSTRAP = "http://127.0.0.1:8080/dns.json"


@pytest.mark.parametrize(
    ("bootstrap", "url", "scheme", "allowed"),
    [
        (BOOTSTRAP, "https://rdap.example/domain/x", "https", True),
        (BOOTSTRAP, "https://rdap.example:443/domain/x", "https", True),
        (BOOTSTRAP, "http://rdap.example/domain/x", "http", True),
        (BOOTSTRAP, "http://rdap.example/domain/x", "https", False),  # a downgrade
        (BOOTSTRAP, "https://rdap.example/domain/x", "http", False),
        (BOOTSTRAP, "https://rdap.example:8443/domain/x", "https", False),
        (BOOTSTRAP, "https://rdap.example:80/domain/x", "https", False),
        (BOOTSTRAP, "http://rdap.example:443/domain/x", "http", True),  # the bootstrap's port
        (BOOTSTRAP, "http://rdap.example:0x50/domain/x", "http", False),
        (BOOTSTRAP, "https://rdap.example:6379/domain/x", None, False),  # a related link
        (BOOTSTRAP, "http://rdap.example/domain/x", None, True),
        (BOOTSTRAP, "file:///etc/passwd", None, False),
        (LOCAL_BOOTSTRAP, "http://rdap.example:8080/domain/x", "http", True),
        (LOCAL_BOOTSTRAP, "https://rdap.example:8080/domain/x", None, True),
        (LOCAL_BOOTSTRAP, "http://rdap.example:8081/domain/x", "http", False),
        (LOCAL_BOOTSTRAP, "http://rdap.example:99999/domain/x", "http", False),
        (Path("/srv/dns.json").as_uri(), "https://rdap.example:8080/domain/x", None, False),
    ],
)
def test_urls_an_answer_names_keep_to_the_allowed_schemes_and_ports(
    bootstrap: str, url: str, scheme: str | None, allowed: bool
) -> None:
    client = rdap.RdapClient(Settings(rdap_bootstrap_url=bootstrap))
    if allowed:
        client._check_target(url, "redirect", scheme=scheme)
    else:
        with pytest.raises(RegistryLookupError, match="refusing to follow a redirect"):
            client._check_target(url, "redirect", scheme=scheme)


async def test_registrar_record_is_followed(server: FakeRdapServer) -> None:
    async with rdap.RdapClient(settings_for(server)) as client:
        registry = await client.query("google.com")
        assert isinstance(registry, rdap.RdapAnswer)
        registrar = await client.related(registry)
    assert registrar is not None
    assert registrar.url == (
        f"http://localhost:{server.port}/rdap.markmonitor.com/rdap/domain/GOOGLE.COM"
    )
    assert registrar.data["port43"] == "whois.markmonitor.com"


async def test_registrar_record_on_a_private_address_is_skipped(server: FakeRdapServer) -> None:
    async with rdap.RdapClient(settings_for(server, allow_private=False)) as client:
        registry = await client.query("google.com")
        assert isinstance(registry, rdap.RdapAnswer)
        assert await client.related(registry) is None
    assert not any("markmonitor" in path for path in server.requests)


async def test_registrar_record_failure_is_skipped(server: FakeRdapServer) -> None:
    async with rdap.RdapClient(settings_for(server)) as client:
        registry = await client.query("google.com")
        assert isinstance(registry, rdap.RdapAnswer)
        server.set_fault("google.com", RdapFault.SLOW)
        assert await client.related(registry) is None


async def test_names_are_resolved_with_the_configured_nameservers(dns_server: DnsServer) -> None:
    dns_server.load(
        {"registry.test.": {"A": "192.0.2.1"}, "rdap.registry.test.": {"A": "127.0.0.1"}}
    )
    with FakeRdapServer(host_name="rdap.registry.test") as fake:
        fake.add_domain("google.com", DOMAINS / "verisign__google.com.json")
        settings = dns_server.settings(
            rdap_bootstrap_url=fake.bootstrap_url, probe_timeout_s=TIMEOUT
        )
        result = await rdap.query_rdap("google.com", settings)
    assert isinstance(result, rdap.RdapAnswer)
    assert result.url.startswith(f"http://rdap.registry.test:{fake.port}/")
    assert ("rdap.registry.test.", "A") in dns_server.queries


async def test_unresolvable_host(dns_server: DnsServer) -> None:
    dns_server.load({"registry.test.": {"A": "192.0.2.1"}})
    settings = dns_server.settings(
        rdap_bootstrap_url="http://rdap.registry.test/dns.json", probe_timeout_s=TIMEOUT
    )
    error = await failure("google.com", settings)
    assert error.kind == LookupFailureKind.CONNECTION
    assert error.message == "cannot resolve rdap.registry.test (nxdomain)"
