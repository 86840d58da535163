"""lookup_registration end to end: RDAP first, WHOIS fallback, never a failure as "free"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tests.fakes.rdap_server import FIXTURES, FakeRdapServer, RdapFault
from tests.fakes.whois_server import FakeWhoisServer, WhoisFault
from tracking.core.errors import ErrorCode
from tracking.core.registration import LookupFailureKind
from tracking.core.settings import Settings
from tracking.probes import rdap, whois
from tracking.probes.registration import (
    RDAP_CONTENT_TYPE,
    WHOIS_CONTENT_TYPE,
    RegistrationFailed,
    RegistrationFound,
    RegistrationNotRegistered,
    RegistrationOutcome,
    lookup_registration,
)

DOMAINS = FIXTURES / "rdap" / "domains"
RAW = FIXTURES / "whois" / "raw"
ADAPTED = FIXTURES / "whois" / "adapted"
TIMEOUT = 1.0  # generous: a loaded CI machine took over 0.3 s to answer an HTTP 429


@dataclass
class Registries:
    rdap: FakeRdapServer
    whois: FakeWhoisServer

    def settings(self, *, allow_private: bool = True) -> Settings:
        return Settings(
            rdap_bootstrap_url=self.rdap.bootstrap_url,
            whois_server=self.whois.address,
            allow_private_targets=allow_private,
            probe_timeout_s=TIMEOUT,
        )

    @property
    def whois_label(self) -> str:
        host, port = self.whois.address
        return f"{host}:{port}"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    rdap.clear_bootstrap_cache()
    whois.clear_referral_cache()
    yield
    rdap.clear_bootstrap_cache()
    whois.clear_referral_cache()


@pytest.fixture
def registries() -> Iterator[Registries]:
    with (
        FakeRdapServer(aliases={"rdap.markmonitor.com": "localhost"}) as rdap_fake,
        FakeWhoisServer() as whois_fake,
    ):
        rdap_fake.add_domain(
            "google.com", DOMAINS / "verisign__google.com.json", registry="rdap.verisign.com"
        )
        rdap_fake.add_domain(
            "google.com", DOMAINS / "markmonitor__google.com.json", registry="rdap.markmonitor.com"
        )
        rdap_fake.add_domain("apache.org", DOMAINS / "pir__apache.org.json")
        rdap_fake.add_domain("amazon.co.uk", DOMAINS / "nominet__amazon.co.uk.json")
        rdap_fake.add_domain("example.com", DOMAINS / "verisign__example.com.json")
        for name in (
            "google.com",
            "urlowl.com",
            "apache.org",
            "amazon.co.uk",
            "google.de",
            "web.de",
            "google.io",
            "golang.io",
        ):
            whois_fake.add(name, RAW / name)
        whois_fake.add("nosuchdomain-dstrack.com", ADAPTED / "notfound.verisign")
        whois_fake.add("nosuchdomain-dstrack.co.uk", ADAPTED / "notfound.nominet")
        whois_fake.add("nosuchdomain-dstrack.de", ADAPTED / "notfound.denic")
        whois_fake.add("nosuchdomain-dstrack.org", ADAPTED / "notfound.pir")
        whois_fake.add("nosuchdomain-dstrack.io", ADAPTED / "notfound.io")
        yield Registries(rdap_fake, whois_fake)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def found(outcome: RegistrationOutcome) -> RegistrationFound:
    assert isinstance(outcome, RegistrationFound), outcome
    return outcome


def failed(outcome: RegistrationOutcome) -> RegistrationFailed:
    assert isinstance(outcome, RegistrationFailed), outcome
    return outcome


# --- RDAP answers -------------------------------------------------------------------------------


async def test_com_over_rdap_with_the_registrars_record(registries: Registries) -> None:
    outcome = found(await lookup_registration("google.com", registries.settings()))
    assert outcome.result == "found"
    assert outcome.source == "RDAP"
    details = outcome.details
    assert details.registrar == "MarkMonitor Inc."
    assert details.registrant_organization == "Google LLC"  # only the registrar publishes it
    assert details.expires_at == utc(2028, 9, 14, 4)  # the registry's date wins
    assert details.created_at == utc(1997, 9, 15, 4)
    assert details.dnssec is False
    assert [a.origin for a in outcome.answers] == [
        f"{registries.rdap.url}/rdap.verisign.com/com/v1/domain/google.com",
        f"http://localhost:{registries.rdap.port}/rdap.markmonitor.com/rdap/domain/GOOGLE.COM",
    ]
    assert {a.content_type for a in outcome.answers} == {RDAP_CONTENT_TYPE}
    assert json.loads(outcome.raw)["handle"] == "2138514_DOMAIN_COM-VRSN"
    assert outcome.notes == ()
    assert registries.whois.queries == []


async def test_org_over_rdap(registries: Registries) -> None:
    details = found(await lookup_registration("apache.org", registries.settings())).details
    assert details.source == "RDAP"
    assert details.registrar == "NAMECHEAP INC"
    assert details.registrant_organization == "The Apache Software Foundation"
    assert details.expires_at == utc(2022, 4, 12, 4)
    assert details.statuses == ("client delete prohibited", "client transfer prohibited")


async def test_uk_over_rdap(registries: Registries) -> None:
    outcome = found(await lookup_registration("amazon.co.uk", registries.settings()))
    assert outcome.source == "RDAP"
    assert outcome.details.expires_at == utc(2020, 12, 5)
    assert outcome.details.registrant_organization is None
    assert len(outcome.answers) == 1  # no related link


# --- RDAP 404: WHOIS confirms, and its record wins -------------------------------------------

RDAP_404_BODY = '{"errorCode": 404, "title": "Not Found"}'


async def test_rdap_404_confirmed_by_whois_is_not_registered(registries: Registries) -> None:
    """Both registries say so. The source is WHOIS, the answer that settled it (and the one
    whose details would have won); the RDAP 404 is noted and kept for the RAW file."""
    outcome = await lookup_registration("nosuchdomain-dstrack.com", registries.settings())
    assert isinstance(outcome, RegistrationNotRegistered)
    assert outcome.result == "not_registered"
    assert outcome.source == "WHOIS"
    assert registries.whois.queries == ["nosuchdomain-dstrack.com"]
    assert [(a.content_type, a.text) for a in outcome.answers] == [
        (WHOIS_CONTENT_TYPE, (ADAPTED / "notfound.verisign").read_text("utf-8")),
        (RDAP_CONTENT_TYPE, RDAP_404_BODY),
    ]
    assert outcome.answers[1].origin.endswith("/domain/nosuchdomain-dstrack.com")
    assert [str(n) for n in outcome.notes] == [
        "RDAP: no record of nosuchdomain-dstrack.com (HTTP 404)"
    ]
    assert outcome.notes[0].kind == LookupFailureKind.NOT_FOUND


async def test_rdap_404_with_a_whois_record_is_registered(registries: Registries) -> None:
    """RDAP has no record of urlowl.com here; WHOIS has one, and its details win."""
    outcome = found(await lookup_registration("urlowl.com", registries.settings()))
    assert outcome.source == "WHOIS" and outcome.details.source == "WHOIS"
    assert outcome.details.registrar == "DYNADOT, LLC"
    assert outcome.details.expires_at == utc(2018, 2, 21, 19, 24, 57)
    assert outcome.raw == (RAW / "urlowl.com").read_text("utf-8")
    assert [a.content_type for a in outcome.answers] == [WHOIS_CONTENT_TYPE, RDAP_CONTENT_TYPE]
    assert [str(n) for n in outcome.notes] == ["RDAP: no record of urlowl.com (HTTP 404)"]


@pytest.mark.parametrize(
    ("fault", "whois_message"),
    [
        (WhoisFault.SILENT, f"timed out after {TIMEOUT:g} s"),
        (WhoisFault.EMPTY, "empty answer from {server}"),
    ],
)
async def test_rdap_404_and_a_whois_failure_is_a_failure(
    registries: Registries, fault: WhoisFault, whois_message: str
) -> None:
    registries.whois.set_fault("nosuchdomain-dstrack.com", fault)
    outcome = failed(await lookup_registration("nosuchdomain-dstrack.com", registries.settings()))
    assert outcome.message == (
        "RDAP: no record of nosuchdomain-dstrack.com (HTTP 404); WHOIS: "
        + whois_message.format(server=registries.whois_label)
    )
    assert outcome.code == ErrorCode.LOOKUP_FAILED
    assert [a.text for a in outcome.answers] == [RDAP_404_BODY]


async def test_rdap_404_and_an_unusable_whois_answer_is_a_failure(registries: Registries) -> None:
    registries.whois.add("nosuchdomain-dstrack.com", "% Error: rate limit exceeded\n")
    outcome = failed(await lookup_registration("nosuchdomain-dstrack.com", registries.settings()))
    assert outcome.kind == LookupFailureKind.INVALID_ANSWER
    assert [a.content_type for a in outcome.answers] == [RDAP_CONTENT_TYPE, WHOIS_CONTENT_TYPE]


def _referral_settings(registries: Registries, *, allow_private: bool = True) -> Settings:
    return Settings(
        rdap_bootstrap_url=registries.rdap.bootstrap_url,
        allow_private_targets=allow_private,
        probe_timeout_s=TIMEOUT,
    )


async def test_rdap_404_stands_when_the_tld_has_no_whois_server(registries: Registries) -> None:
    with FakeWhoisServer() as iana:  # IANA's answer for "com" names no WHOIS server here
        book = {"whois.iana.org": iana.address}
        outcome = await lookup_registration(
            "nosuchdomain-dstrack.com", _referral_settings(registries), whois_address_book=book
        )
    assert iana.queries == ["com"]
    assert isinstance(outcome, RegistrationNotRegistered)
    assert outcome.source == "RDAP"
    assert [a.text for a in outcome.answers] == [RDAP_404_BODY]
    assert [(n.source, n.kind) for n in outcome.notes] == [
        ("RDAP", LookupFailureKind.NOT_FOUND),
        ("WHOIS", LookupFailureKind.NO_SERVER),
    ]


async def test_rdap_404_and_iana_failing_is_a_failure(registries: Registries) -> None:
    """IANA not answering is not IANA saying there is no WHOIS server."""
    with FakeWhoisServer() as iana:
        iana.set_fault("com", WhoisFault.SILENT)
        book = {"whois.iana.org": iana.address}
        outcome = failed(
            await lookup_registration(
                "nosuchdomain-dstrack.com", _referral_settings(registries), whois_address_book=book
            )
        )
    assert outcome.kind == LookupFailureKind.TIMEOUT


async def test_rdap_404_and_a_refused_whois_server_is_a_private_address_failure(
    registries: Registries,
) -> None:
    with FakeWhoisServer(referrals={"com": "whois.verisign-grs.com"}) as iana:
        book = {"whois.iana.org": iana.address}  # IANA is asked through the guard
        outcome = failed(
            await lookup_registration(
                "nosuchdomain-dstrack.com",
                _referral_settings(registries, allow_private=False),
                whois_address_book=book,
            )
        )
    assert outcome.code == ErrorCode.PRIVATE_ADDRESS_REFUSED
    assert iana.queries == []


# --- no RDAP service: WHOIS ---------------------------------------------------------------------


async def test_de_over_whois(registries: Registries) -> None:
    outcome = found(await lookup_registration("google.de", registries.settings()))
    assert outcome.source == "WHOIS"
    assert outcome.details.name_servers == (
        "ns1.google.com",
        "ns2.google.com",
        "ns3.google.com",
        "ns4.google.com",
    )
    assert outcome.details.statuses == ("connect",)
    assert outcome.details.updated_at == utc(2018, 3, 12, 20, 44, 25)
    assert outcome.raw == (RAW / "google.de").read_text("utf-8")
    assert outcome.answers[0].origin == registries.whois_label
    assert outcome.answers[0].content_type == WHOIS_CONTENT_TYPE
    assert outcome.notes == ()  # having no RDAP service is not a failure


async def test_io_over_whois(registries: Registries) -> None:
    details = found(await lookup_registration("google.io", registries.settings())).details
    assert details.source == "WHOIS"
    assert details.registrar == "MarkMonitor, Inc."
    assert details.registrant_organization == "Google LLC"
    assert details.expires_at == utc(2020, 9, 29, 7)
    assert details.dnssec is False


@pytest.mark.parametrize("domain", ["nosuchdomain-dstrack.de", "nosuchdomain-dstrack.io"])
async def test_whois_not_found_is_not_registered(registries: Registries, domain: str) -> None:
    outcome = await lookup_registration(domain, registries.settings())
    assert isinstance(outcome, RegistrationNotRegistered)
    assert outcome.source == "WHOIS"
    assert outcome.answers[0].text  # kept for the RAW file


# --- RDAP failure: WHOIS fallback ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "note"),
    [
        (RdapFault.RATE_LIMITED, "RDAP: HTTP 429 Too Many Requests"),
        (RdapFault.SERVER_ERROR, "RDAP: HTTP 500 Internal Server Error"),
        (RdapFault.SLOW, f"RDAP: timed out after {TIMEOUT:g} s"),
        (RdapFault.INVALID_JSON, "RDAP: the answer is not valid JSON"),
        (RdapFault.HUGE, "RDAP: answer larger than 2 MiB"),
        (RdapFault.NOT_A_DOMAIN, "RDAP: the RDAP answer is a 'entity' object, not a domain"),
    ],
)
async def test_rdap_failure_falls_back_to_whois(
    registries: Registries, fault: RdapFault, note: str
) -> None:
    registries.rdap.set_fault("urlowl.com", fault)
    outcome = found(await lookup_registration("urlowl.com", registries.settings()))
    assert outcome.source == "WHOIS"
    assert outcome.details.registrar == "DYNADOT, LLC"
    assert outcome.details.expires_at == utc(2018, 2, 21, 19, 24, 57)
    assert [str(n) for n in outcome.notes] == [note]
    assert registries.whois.queries == ["urlowl.com"]


@pytest.mark.parametrize(
    "domain", ["nosuchdomain-dstrack.com", "nosuchdomain-dstrack.org", "nosuchdomain-dstrack.co.uk"]
)
async def test_rdap_failure_then_whois_no_match(registries: Registries, domain: str) -> None:
    registries.rdap.set_fault(domain, RdapFault.SERVER_ERROR)
    outcome = await lookup_registration(domain, registries.settings())
    assert isinstance(outcome, RegistrationNotRegistered)
    assert outcome.source == "WHOIS"
    assert [n.kind for n in outcome.notes] == [LookupFailureKind.HTTP_STATUS]


async def test_bootstrap_failure_falls_back_to_whois(registries: Registries) -> None:
    registries.rdap.bootstrap_fault = RdapFault.SERVER_ERROR
    outcome = found(await lookup_registration("apache.org", registries.settings()))
    assert outcome.source == "WHOIS"
    assert outcome.details.registrant_organization == "The Apache Software Foundation"
    assert str(outcome.notes[0]).startswith("RDAP: bootstrap ")


async def test_refused_redirect_falls_back_to_whois(registries: Registries) -> None:
    registries.rdap.set_fault("google.com", RdapFault.REDIRECT_ELSEWHERE)
    outcome = found(
        await lookup_registration("google.com", registries.settings(allow_private=False))
    )
    assert outcome.source == "WHOIS"
    assert outcome.details.expires_at == utc(2011, 9, 14)  # the 2006 WHOIS sample
    assert [n.kind for n in outcome.notes] == [LookupFailureKind.PRIVATE_ADDRESS]


# --- failures -----------------------------------------------------------------------------------


async def test_both_failing_is_a_failure_never_not_registered(registries: Registries) -> None:
    registries.rdap.set_fault("urlowl.com", RdapFault.RATE_LIMITED)
    registries.whois.set_fault("urlowl.com", WhoisFault.SILENT)
    outcome = failed(await lookup_registration("urlowl.com", registries.settings()))
    assert outcome.result == "failed"
    assert outcome.message == (
        f"RDAP: HTTP 429 Too Many Requests; WHOIS: timed out after {TIMEOUT:g} s"
    )
    assert outcome.kind == LookupFailureKind.TIMEOUT
    assert outcome.code == ErrorCode.LOOKUP_FAILED


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (WhoisFault.EMPTY, "WHOIS: empty answer from {server}"),
        (WhoisFault.HUGE, "WHOIS: answer of {server} larger than 256 KiB"),
        (WhoisFault.SILENT, f"WHOIS: timed out after {TIMEOUT:g} s"),
    ],
)
async def test_whois_failure_without_rdap_service(
    registries: Registries, fault: WhoisFault, message: str
) -> None:
    registries.whois.set_fault("google.de", fault)
    outcome = failed(await lookup_registration("google.de", registries.settings()))
    assert outcome.message == message.format(server=registries.whois_label)


async def test_unusable_whois_answer_is_a_failure(registries: Registries) -> None:
    registries.whois.add(
        "google.de", "% Error: 55000000002 Connection refused; access control limit reached.\n"
    )
    outcome = failed(await lookup_registration("google.de", registries.settings()))
    assert (
        outcome.message == f"WHOIS: no registration data in the answer of {registries.whois_label}"
    )
    assert outcome.kind == LookupFailureKind.INVALID_ANSWER
    assert "access control limit" in outcome.answers[0].text


async def test_unusable_rdap_answer_is_kept(registries: Registries) -> None:
    registries.rdap.set_fault("google.de", RdapFault.NOT_A_DOMAIN)  # no .de service: unused
    registries.rdap.set_fault("urlowl.com", RdapFault.NOT_A_DOMAIN)
    registries.whois.set_fault("urlowl.com", WhoisFault.EMPTY)
    outcome = failed(await lookup_registration("urlowl.com", registries.settings()))
    assert [f.source for f in outcome.failures] == ["RDAP", "WHOIS"]
    assert outcome.answers[0].content_type == RDAP_CONTENT_TYPE


async def test_everything_refused_is_a_private_address_failure(registries: Registries) -> None:
    registries.rdap.set_fault("urlowl.com", RdapFault.REDIRECT_ELSEWHERE)
    settings = Settings(
        rdap_bootstrap_url=registries.rdap.bootstrap_url,
        allow_private_targets=False,
        probe_timeout_s=TIMEOUT,
    )
    book = {"whois.iana.org": registries.whois.address}  # IANA referral, guarded
    outcome = failed(await lookup_registration("urlowl.com", settings, whois_address_book=book))
    assert outcome.code == ErrorCode.PRIVATE_ADDRESS_REFUSED
    assert [f.kind for f in outcome.failures] == [LookupFailureKind.PRIVATE_ADDRESS] * 2


async def test_thin_whois_registry_and_registrar_are_merged(registries: Registries) -> None:
    registries.rdap.set_fault("he.net", RdapFault.SERVER_ERROR)
    with (
        FakeWhoisServer(referrals={"net": "whois.verisign-grs.com"}) as iana,
        FakeWhoisServer({"he.net": ADAPTED / "he.net.registry"}) as registry,
        FakeWhoisServer({"he.net": RAW / "he.net"}) as registrar,
    ):
        book = {
            "whois.iana.org": iana.address,
            "whois.verisign-grs.com": registry.address,
            "whois.networksolutions.com": registrar.address,
        }
        settings = Settings(
            rdap_bootstrap_url=registries.rdap.bootstrap_url,
            allow_private_targets=True,
            probe_timeout_s=TIMEOUT,
        )
        outcome = found(await lookup_registration("he.net", settings, whois_address_book=book))
    assert outcome.source == "WHOIS"
    assert outcome.details.registrant_organization == "Hurricane Electric Hostmaster"
    assert outcome.details.expires_at == utc(2029, 7, 30, 4)
    assert [a.origin for a in outcome.answers] == [
        "whois.verisign-grs.com",
        "whois.networksolutions.com",
    ]
