"""WHOIS probe against real local TCP servers replaying real registry answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.fakes.dns_server import DnsServer
from tests.fakes.whois_server import FIXTURES, FakeWhoisServer, WhoisFault
from tracking.core.errors import ErrorCode
from tracking.core.registration import LookupFailureKind, RegistryLookupError
from tracking.core.settings import Settings
from tracking.core.whois_text import is_whois_not_found
from tracking.probes import whois

RAW = FIXTURES / "whois" / "raw"
TIMEOUT = 1.0  # generous: a loaded CI machine took over 0.3 s to answer an HTTP 429


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    whois.clear_referral_cache()
    yield
    whois.clear_referral_cache()


@pytest.fixture
def registry() -> Iterator[FakeWhoisServer]:
    with FakeWhoisServer() as fake:
        for name in ("google.de", "google.io", "golang.io", "urlowl.com"):
            fake.add(name, RAW / name)
        fake.add("he.net", FIXTURES / "whois" / "adapted" / "he.net.registry")
        yield fake


@pytest.fixture
def iana() -> Iterator[FakeWhoisServer]:
    referrals = {"io": "whois.nic.io", "de": "whois.denic.de", "net": "whois.verisign-grs.com"}
    with FakeWhoisServer(referrals=referrals) as fake:
        yield fake


def override(fake: FakeWhoisServer, *, allow_private: bool = True) -> Settings:
    return Settings(
        whois_server=fake.address, allow_private_targets=allow_private, probe_timeout_s=TIMEOUT
    )


def referral_settings(*, allow_private: bool = True) -> Settings:
    return Settings(allow_private_targets=allow_private, probe_timeout_s=TIMEOUT)


async def failure(domain: str, settings: Settings, **kwargs: object) -> RegistryLookupError:
    with pytest.raises(RegistryLookupError) as caught:
        await whois.query_whois(domain, settings, **kwargs)  # type: ignore[arg-type]
    assert caught.value.source == "WHOIS"
    return caught.value


async def test_configured_server_answers(registry: FakeWhoisServer) -> None:
    answer = await whois.query_whois("Google.DE", override(registry))
    host, port = registry.address
    assert answer == whois.WhoisAnswer(f"{host}:{port}", (RAW / "google.de").read_text("utf-8"))
    assert registry.queries == ["google.de"]


async def test_answer_is_kept_byte_for_byte(registry: FakeWhoisServer) -> None:
    registry.add("web.de", RAW / "web.de")  # CRLF line endings
    answer = await whois.query_whois("web.de", override(registry))
    assert answer.text.encode("utf-8") == (RAW / "web.de").read_bytes()


async def test_configured_server_gets_every_query_without_referrals(
    registry: FakeWhoisServer,
) -> None:
    answer = await whois.query_whois("urlowl.com", override(registry))
    assert answer.registrar_server is None
    assert registry.queries == ["urlowl.com"]


async def test_iana_referral_is_cached_per_tld(
    iana: FakeWhoisServer, registry: FakeWhoisServer
) -> None:
    book = {"whois.iana.org": iana.address, "whois.nic.io": registry.address}
    answer = await whois.query_whois("google.io", referral_settings(), address_book=book)
    assert answer.server == "whois.nic.io"
    assert answer.text == (RAW / "google.io").read_text("utf-8")
    await whois.query_whois("golang.io", referral_settings(), address_book=book)
    assert iana.queries == ["io"]
    assert registry.queries == ["google.io", "golang.io"]


async def test_jprs_is_asked_for_english() -> None:
    """JPRS answers in Japanese unless the query ends with "/e"; the English answer is the one
    with the expiry date the parser reads."""
    with FakeWhoisServer(referrals={"jp": "whois.jprs.jp"}) as iana_jp, FakeWhoisServer() as jprs:
        jprs.add("yahoo.co.jp/e", RAW / "yahoo.co.jp")
        book = {"whois.iana.org": iana_jp.address, "whois.jprs.jp": jprs.address}
        answer = await whois.query_whois("yahoo.co.jp", referral_settings(), address_book=book)
    assert jprs.queries == ["yahoo.co.jp/e"]
    assert answer.text == (RAW / "yahoo.co.jp").read_text("utf-8")


async def test_iana_without_a_server_for_the_tld(iana: FakeWhoisServer) -> None:
    book = {"whois.iana.org": iana.address}
    error = await failure("example.zz", referral_settings(), address_book=book)
    assert error.kind == LookupFailureKind.NO_SERVER
    assert error.message == "IANA names no WHOIS server for .zz"


async def test_thin_registry_refers_to_the_registrar(
    iana: FakeWhoisServer, registry: FakeWhoisServer
) -> None:
    with FakeWhoisServer({"he.net": RAW / "he.net"}) as registrar:
        book = {
            "whois.iana.org": iana.address,
            "whois.verisign-grs.com": registry.address,
            "whois.networksolutions.com": registrar.address,
        }
        answer = await whois.query_whois("he.net", referral_settings(), address_book=book)
    assert answer.server == "whois.verisign-grs.com"
    assert answer.registrar_server == "whois.networksolutions.com"
    assert answer.registrar_text == (RAW / "he.net").read_text("utf-8")


async def test_registrar_failure_keeps_the_registry_answer(
    iana: FakeWhoisServer, registry: FakeWhoisServer
) -> None:
    with FakeWhoisServer() as registrar:
        registrar.set_fault("he.net", WhoisFault.SILENT)
        book = {
            "whois.iana.org": iana.address,
            "whois.verisign-grs.com": registry.address,
            "whois.networksolutions.com": registrar.address,
        }
        answer = await whois.query_whois("he.net", referral_settings(), address_book=book)
    assert answer.registrar_server is None
    assert "Registry Expiry Date" in answer.text


async def test_servers_named_by_answers_are_guarded(iana: FakeWhoisServer) -> None:
    book = {"whois.iana.org": iana.address}
    error = await failure("google.io", referral_settings(allow_private=False), address_book=book)
    assert error.kind == LookupFailureKind.PRIVATE_ADDRESS
    assert error.code == ErrorCode.PRIVATE_ADDRESS_REFUSED
    assert iana.queries == []


async def test_configured_server_is_not_guarded(registry: FakeWhoisServer) -> None:
    settings = override(registry, allow_private=False)
    answer = await whois.query_whois("google.de", settings)
    assert "Domain: google.de" in answer.text


async def test_no_match_is_an_answer(registry: FakeWhoisServer) -> None:
    registry.set_fault("google.de", WhoisFault.NO_MATCH)
    answer = await whois.query_whois("google.de", override(registry))
    assert is_whois_not_found(answer.text)


@pytest.mark.parametrize(
    ("fault", "kind", "message"),
    [
        (WhoisFault.EMPTY, LookupFailureKind.EMPTY_ANSWER, "empty answer from {server}"),
        (WhoisFault.SILENT, LookupFailureKind.TIMEOUT, f"timed out after {TIMEOUT:g} s"),
        (WhoisFault.HUGE, LookupFailureKind.TOO_LARGE, "answer of {server} larger than 256 KiB"),
    ],
)
async def test_faults_are_failures(
    registry: FakeWhoisServer, fault: WhoisFault, kind: str, message: str
) -> None:
    registry.set_fault("google.de", fault)
    host, port = registry.address
    started = time.monotonic()
    error = await failure("google.de", override(registry))
    assert (error.kind, error.message) == (kind, message.format(server=f"{host}:{port}"))
    assert error.code == ErrorCode.LOOKUP_FAILED
    assert time.monotonic() - started < 2


async def test_connection_refused() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(whois_server=("127.0.0.1", port), probe_timeout_s=TIMEOUT)
    error = await failure("google.de", settings)
    assert error.kind == LookupFailureKind.CONNECTION
    assert error.message == f"connection refused by 127.0.0.1:{port}"


async def test_configured_server_name_is_resolved_with_the_configured_nameservers(
    registry: FakeWhoisServer, dns_server: DnsServer
) -> None:
    dns_server.load(
        {"registry.test.": {"A": "192.0.2.1"}, "whois.registry.test.": {"A": "127.0.0.1"}}
    )
    settings = dns_server.settings(
        whois_server=("whois.registry.test", registry.address[1]), probe_timeout_s=TIMEOUT
    )
    answer = await whois.query_whois("google.de", settings)
    assert answer.server == f"whois.registry.test:{registry.address[1]}"
    assert ("whois.registry.test.", "A") in dns_server.queries


async def test_unresolvable_server(dns_server: DnsServer) -> None:
    dns_server.load({"registry.test.": {"A": "192.0.2.1"}})
    settings = dns_server.settings(
        whois_server=("whois.registry.test", 43), probe_timeout_s=TIMEOUT
    )
    error = await failure("google.de", settings)
    assert (error.kind, error.message) == (
        LookupFailureKind.CONNECTION,
        "cannot resolve whois.registry.test (nxdomain)",
    )


async def test_latin1_answers_are_decoded(registry: FakeWhoisServer) -> None:
    registry.answers["example.de"] = "Domain: example.de\nHolder: Müller\n".encode("latin-1")
    answer = await whois.query_whois("example.de", override(registry))
    assert "Müller" in answer.text
