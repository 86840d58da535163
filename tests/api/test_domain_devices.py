"""Domain devices end to end: GraphQL over HTTP -> RDAP / WHOIS / DNS / TLS fakes -> database.

The registries answer with real RDAP and WHOIS answers (``tests/fixtures/registry``); the
expected values below are read off those files, not off the code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes

from tests.api import helpers, queries
from tests.conftest import GraphQLClient, World, _domain_certificate
from tests.fakes.dns_server import Fault
from tests.fakes.rdap_server import FIXTURES, RdapFault
from tests.fakes.whois_server import WhoisFault
from tracking.core import clock

RDAP_DOMAINS = FIXTURES / "rdap" / "domains"
WHOIS_RAW = FIXTURES / "whois" / "raw"
WHOIS_ADAPTED = FIXTURES / "whois" / "adapted"

# The registry answers are from July 2024; "now" is a little later.
NOW = datetime(2024, 8, 1, 12, 0, tzinfo=UTC)

DOMAIN_DETAILS = """
  registrar registrantOrganization createdAt updatedAt expiresAt nameServers statuses dnssec
  source registered registrationError dnsError dnsRecords { name type ttl value }
"""
CHILD_FIELDS = """
  id name category active organization { id } contract { id } parent { id }
  sslSource { kind host port } sslDetails { commonName fingerprintSha256 }
  updateSchedule { interval } activity { text } rawFiles { id }
"""
DOMAIN_FIELDS = f"""
  id name category active domain domainUnicode lastUpdatedAt lastUpdateError
  organization {{ id }} contract {{ id }} parent {{ id }}
  children {{ {CHILD_FIELDS} }}
  domainDetails {{ {DOMAIN_DETAILS} }}
  updateSchedule {{ nextUpdateAt interval reason }}
  activity {{ author text }}
  rawFiles {{ id fileName contentType sizeBytes url }}
"""
CREATE_DOMAIN = f"""
mutation($input: CreateDeviceInput!) {{
  createDevice(input: $input) {{ device {{ {DOMAIN_FIELDS} }} errors {{ field code message }} }}
}}"""
UPDATE_DOMAIN = f"""
mutation($id: ID!, $input: UpdateDeviceInput!, $updateDetails: Boolean = false) {{
  updateDevice(id: $id, input: $input, updateDetails: $updateDetails) {{
    device {{ {DOMAIN_FIELDS} }} errors {{ field code message }}
  }}
}}"""
FORCE_UPDATE = f"""
mutation($ids: [ID!]!) {{
  forceUpdate(ids: $ids) {{
    results {{ deviceId changed message errors {{ code message }} device {{ {DOMAIN_FIELDS} }} }}
  }}
}}"""
READ_DOMAIN = f"query($id: ID!) {{ device(id: $id) {{ {DOMAIN_FIELDS} }} }}"

GOOGLE_NS = ["ns1.google.com", "ns2.google.com", "ns3.google.com", "ns4.google.com"]
PROHIBITED = [
    "client delete prohibited",
    "client transfer prohibited",
    "client update prohibited",
    "server delete prohibited",
    "server transfer prohibited",
    "server update prohibited",
]
# raw/google.com: Verisign's 2006 answer (Registrar, Updated, Creation, Expiration Date).
GOOGLE_COM_WHOIS = {
    "registrar": "MARKMONITOR INC.",
    "registrantOrganization": None,
    "createdAt": "1997-09-15T00:00:00+00:00",
    "updatedAt": "2006-04-10T00:00:00+00:00",
    "expiresAt": "2011-09-14T00:00:00+00:00",
    "nameServers": GOOGLE_NS,
    "statuses": PROHIBITED[:3],
    "dnssec": None,
    "source": "WHOIS",
}


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def registries(world: World) -> World:
    """The registries' real answers, served by the local RDAP and WHOIS servers."""
    world.rdap.add_domain(
        "google.com", RDAP_DOMAINS / "verisign__google.com.json", registry="rdap.verisign.com"
    )
    world.rdap.add_domain(
        "google.com", RDAP_DOMAINS / "markmonitor__google.com.json", registry="rdap.markmonitor.com"
    )
    for name, file in [
        ("example.com", "verisign__example.com.json"),
        ("themarquetry.com", "verisign__themarquetry.com.json"),
        ("apache.org", "pir__apache.org.json"),
        ("amazon.co.uk", "nominet__amazon.co.uk.json"),
    ]:
        world.rdap.add_domain(name, RDAP_DOMAINS / file)
    for name in ("google.com", "apache.org", "amazon.co.uk", "google.de", "web.de"):
        world.whois.add(name, WHOIS_RAW / name)
    for name in ("google.io", "golang.io"):
        world.whois.add(name, WHOIS_RAW / name)
    world.whois.add("nosuchdomain-dstrack.de", WHOIS_ADAPTED / "notfound.denic")
    return world


@pytest.fixture
def frozen() -> Iterator[datetime]:
    with clock.use_clock(lambda: NOW):
        yield NOW


async def create_domain(api: GraphQLClient, org: str, domain: Any, **fields: Any) -> dict[str, Any]:
    data = await api.ok(
        CREATE_DOMAIN,
        input={"organizationId": org, "category": "DOMAIN", "domain": domain, **fields},
    )
    payload: dict[str, Any] = data["createDevice"]
    return payload


async def domain_device(api: GraphQLClient, org: str, domain: str, **fields: Any) -> dict[str, Any]:
    payload = await create_domain(api, org, domain, **fields)
    assert payload["errors"] == [], payload["errors"]
    device: dict[str, Any] = payload["device"]
    return device


async def force_update(api: GraphQLClient, device_id: str) -> dict[str, Any]:
    [result] = (await api.ok(FORCE_UPDATE, ids=[device_id]))["forceUpdate"]["results"]
    assert result["deviceId"] == device_id
    return dict(result)


async def update(
    api: GraphQLClient, device_id: str, update_details: bool = False, **fields: Any
) -> dict[str, Any]:
    data = await api.ok(UPDATE_DOMAIN, id=device_id, input=fields, updateDetails=update_details)
    payload: dict[str, Any] = data["updateDevice"]
    return payload


async def read(api: GraphQLClient, device_id: str) -> dict[str, Any]:
    device: dict[str, Any] = (await api.ok(READ_DOMAIN, id=device_id))["device"]
    return device


def notes(device: dict[str, Any]) -> list[str]:
    return [note["text"] for note in device["activity"]]


def registration(device: dict[str, Any]) -> dict[str, Any]:
    """The registration part of domainDetails (without DNS and the error fields)."""
    details = dict(device["domainDetails"])
    for key in ("dnsRecords", "dnsError", "registered", "registrationError"):
        details.pop(key)
    return details


def rdap_domain_requests(world: World) -> list[str]:
    return [path for path in world.rdap.requests if "/domain/" in path]


def load_parent_zone(world: World, tld: str) -> None:
    """Make the DNS server authoritative for ``tld``: unknown names in it are NXDOMAIN."""
    world.dns.load(
        {f"{tld}.": {"SOA": f"a.nic.{tld}. hostmaster.nic.{tld}. 1 7200 900 1209600 86400"}},
        origin=f"{tld}.",
    )


def no_tls_to(world: World, *hosts: str) -> bool:
    return not any(c.server_name in hosts for c in world.tls.connections)


# --- 1. what a domain is ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "datto.com",
        ".datto.com",
        "datto.com.",
        "https://www.datto.com/path",
        "www.datto.com",
        "datto.com/path",
        "  datto.com  ",
        "DATTO.COM",
        "HTTPS://WWW.Datto.com:8443/x?y=1#z",
        "http://datto.com",
    ],
)
async def test_typed_domain_is_stored_as_the_registrable_domain(
    api: GraphQLClient, world: World, typed: str
) -> None:
    org = await helpers.organization(api)
    device = await domain_device(api, org, typed, createSslCertificate=False)
    assert device["category"] == "DOMAIN"
    assert device["domain"] == "datto.com"
    assert device["domainUnicode"] == "datto.com"
    assert device["name"] == "datto.com"
    # The look-ups were for the registrable domain, never for what was typed.
    assert [p.rsplit("/", 1)[-1] for p in rdap_domain_requests(world)] == ["datto.com"]
    assert {name for name, _ in world.dns.queries} <= {
        "datto.com.",
        "www.datto.com.",
        "_dmarc.datto.com.",
    }


async def test_a_subdomain_under_a_public_suffix_is_its_registrable_domain(
    api: GraphQLClient,
) -> None:
    org = await helpers.organization(api)
    device = await domain_device(api, org, "a.b.example.co.uk", createSslCertificate=False)
    assert device["domain"] == "example.co.uk"
    assert device["domainUnicode"] == "example.co.uk"


@pytest.mark.parametrize("typed", ["bücher.de", "BÜCHER.de", "xn--bcher-kva.de", "www.bücher.de"])
async def test_an_idn_is_stored_as_a_labels_and_shown_as_u_labels(
    api: GraphQLClient, world: World, typed: str
) -> None:
    org = await helpers.organization(api)
    device = await domain_device(api, org, typed, createSslCertificate=False)
    assert device["domain"] == "xn--bcher-kva.de"
    assert device["domainUnicode"] == "bücher.de"
    assert device["name"] == "bücher.de"
    # .de has no RDAP service: WHOIS was asked, with A-labels.
    assert world.whois.queries == ["xn--bcher-kva.de"]
    assert notes(device)[0].startswith("Domain details looked up for bücher.de.")
    read_back = await read(api, device["id"])
    assert (read_back["domain"], read_back["domainUnicode"]) == ("xn--bcher-kva.de", "bücher.de")


async def test_a_wildcard_domain_is_saved_without_details_or_job(
    api: GraphQLClient, world: World
) -> None:
    org = await helpers.organization(api)
    device = await domain_device(api, org, "*.datto.com")

    assert device["domain"] == "*.datto.com"
    assert device["domainUnicode"] == "*.datto.com"
    assert device["name"] == "*.datto.com"
    assert device["domainDetails"] is None
    assert device["updateSchedule"] is None
    assert device["lastUpdatedAt"] is None
    assert device["lastUpdateError"] is None
    assert device["children"] == []
    assert device["rawFiles"] == []
    assert "wildcard" in notes(device)[0]
    assert rdap_domain_requests(world) == []
    assert world.whois.queries == []
    assert world.dns.queries == []
    assert world.tls.connections == []

    result = await force_update(api, device["id"])
    assert [e["code"] for e in result["errors"]] == ["INVALID_INPUT"]
    assert "wildcard" in result["message"]
    assert (await read(api, device["id"]))["domainDetails"] is None


@pytest.mark.parametrize(
    ("domain", "tld", "source"),
    [
        ("nosuchdomain-dstrack.com", "com", "WHOIS"),  # RDAP 404, confirmed by "No match for"
        ("nosuchdomain-dstrack.de", "de", "WHOIS"),  # DENIC "Status: free"
        ("nosuchdomain-dstrack.io", "io", "WHOIS"),  # "No match for"
    ],
)
async def test_a_domain_that_does_not_exist_is_saved_with_no_details_and_a_note(
    api: GraphQLClient, world: World, frozen: datetime, domain: str, tld: str, source: str
) -> None:
    load_parent_zone(world, tld)  # the DNS answers NXDOMAIN for it, as on the internet
    org = await helpers.organization(api)
    device = await domain_device(api, org, domain)

    assert device["domain"] == domain
    assert device["domainDetails"] == {
        "registrar": None,
        "registrantOrganization": None,
        "createdAt": None,
        "updatedAt": None,
        "expiresAt": None,
        "nameServers": [],
        "statuses": [],
        "dnssec": None,
        "source": source,
        "registered": False,
        "registrationError": None,
        "dnsError": None,
        "dnsRecords": [],
    }
    assert device["lastUpdateError"] is None
    assert device["children"] == []
    [looked_up] = [n for n in notes(device) if n.startswith("Domain details looked up")]
    assert "not registered" in looked_up
    assert "NXDOMAIN" in looked_up
    # NXDOMAIN is an answer, not a failure: no one-hour retry.
    assert device["updateSchedule"]["interval"] == "P30D"
    assert "expiry date is unknown" in device["updateSchedule"]["reason"]
    assert any("No SSL certificate was found" in n for n in notes(device))


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("not a domain", "INVALID_DOMAIN"),
        ("http://", "INVALID_DOMAIN"),
        ("https://", "INVALID_DOMAIN"),
        ("co.uk", "INVALID_DOMAIN"),
        ("com", "INVALID_DOMAIN"),
        ("*.co.uk", "INVALID_DOMAIN"),
        ("192.0.2.1", "INVALID_DOMAIN"),
        ("https://192.0.2.1/", "INVALID_DOMAIN"),
        ("[2001:db8::1]", "INVALID_DOMAIN"),
        ("2001:db8::1", "INVALID_DOMAIN"),
        ("a" * 300, "INVALID_DOMAIN"),
        (".".join(["a" * 60] * 5) + ".com", "INVALID_DOMAIN"),
        ("exa mple.com", "INVALID_DOMAIN"),
        ("datto..com", "INVALID_DOMAIN"),
        ("-datto.com", "INVALID_DOMAIN"),
        ("datto_x.com", "INVALID_DOMAIN"),
        ("user@datto.com", "INVALID_DOMAIN"),
        ("ftp://datto.com", "INVALID_DOMAIN"),
        ("datto.com:99999", "INVALID_DOMAIN"),
        ("*.*.datto.com", "INVALID_DOMAIN"),
        ("datto.com\u200b", "INVALID_DOMAIN"),  # a zero-width space
        ("1.2.3.4.5", "INVALID_DOMAIN"),
        ("", "REQUIRED"),
        ("   ", "REQUIRED"),
        (None, "REQUIRED"),
    ],
)
async def test_what_is_not_a_domain_is_refused_and_nothing_is_saved(
    api: GraphQLClient, world: World, typed: str | None, code: str
) -> None:
    org = await helpers.organization(api)
    await domain_device(api, org, "*.example.com")  # one device already there
    before = await helpers.device_count(api)

    payload = await create_domain(api, org, typed)

    assert payload["device"] is None
    [error] = payload["errors"]
    assert (error["code"], error["field"]) == (code, "domain")
    assert error["message"]
    assert await helpers.device_count(api) == before
    assert rdap_domain_requests(world) == []
    assert world.whois.queries == []
    assert world.dns.queries == []


# --- 2. registration ---------------------------------------------------------------------------


async def test_com_over_rdap_with_the_registrars_record(
    api: GraphQLClient, world: World, frozen: datetime
) -> None:
    world.add_domain("google.com")
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.com", createSslCertificate=False)

    # verisign__google.com.json, completed by markmonitor__google.com.json (its related link):
    # the registry's dates win, the registrant comes from the registrar's record.
    assert registration(device) == {
        "registrar": "MarkMonitor Inc.",
        "registrantOrganization": "Google LLC",
        "createdAt": "1997-09-15T04:00:00+00:00",
        "updatedAt": "2019-09-09T15:39:04+00:00",
        "expiresAt": "2028-09-14T04:00:00+00:00",
        "nameServers": GOOGLE_NS,
        "statuses": PROHIBITED,
        "dnssec": False,
        "source": "RDAP",
    }
    details = device["domainDetails"]
    assert (details["registered"], details["registrationError"], details["dnsError"]) == (
        True,
        None,
        None,
    )
    assert device["lastUpdateError"] is None
    assert device["lastUpdatedAt"] == NOW.isoformat()
    assert world.whois.queries == []
    assert any(p.startswith("/rdap.markmonitor.com/") for p in rdap_domain_requests(world))

    schedule = device["updateSchedule"]
    assert schedule["interval"] == "P30D"
    assert schedule["nextUpdateAt"] == (NOW + timedelta(days=30)).isoformat()
    assert "expires in" in schedule["reason"]

    [note, created] = notes(device)
    assert created == "Device created by admin."
    assert note.startswith("Domain details looked up for google.com.")
    assert "RDAP" in note and "MarkMonitor Inc." in note and "2028-09-14" in note
    assert [a["author"] for a in device["activity"]] == ["admin", "admin"]

    # The first retrieval is kept as a RAW file: both RDAP answers as received, and the DNS.
    [raw] = device["rawFiles"]
    assert raw["contentType"] == "application/json"
    assert raw["fileName"].startswith("domain-google.com-")
    response = await api.http.get(raw["url"], headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200
    assert len(response.content) == raw["sizeBytes"]
    document = json.loads(response.content)
    origins = [a["origin"] for a in document["registration"]["answers"]]
    assert [o.split("/")[3] for o in origins] == ["rdap.verisign.com", "rdap.markmonitor.com"]
    registry_answer = json.loads(document["registration"]["answers"][0]["text"])
    assert registry_answer["ldhName"] == "GOOGLE.COM"
    assert {r["type"] for r in document["dns"]["records"]} >= {"A", "MX", "NS", "SOA"}


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        (
            "apache.org",  # pir__apache.org.json: registrant name redacted, organization shown
            {
                "registrar": "NAMECHEAP INC",
                "registrantOrganization": "The Apache Software Foundation",
                "createdAt": "1995-04-11T04:00:00+00:00",
                "updatedAt": "2018-09-25T13:18:21+00:00",
                "expiresAt": "2022-04-12T04:00:00+00:00",
                "nameServers": [
                    "ns1.no-ip.com",
                    "ns2.no-ip.com",
                    "ns2.surfnet.nl",
                    "ns3.no-ip.com",
                    "ns4.no-ip.com",
                ],
                "statuses": ["client delete prohibited", "client transfer prohibited"],
                "dnssec": False,
                "source": "RDAP",
            },
        ),
        (
            "amazon.co.uk",  # nominet__amazon.co.uk.json: registrant redacted entirely
            {
                "registrar": "Amazon.com, Inc. t/a Amazon.com, Inc.",
                "registrantOrganization": None,
                "createdAt": "1996-08-01T00:00:00+00:00",
                "updatedAt": "2013-10-23T00:00:00+00:00",
                "expiresAt": "2020-12-05T00:00:00+00:00",
                "nameServers": [
                    "ns1.p31.dynect.net",
                    "ns2.p31.dynect.net",
                    "ns3.p31.dynect.net",
                    "ns4.p31.dynect.net",
                    "pdns1.ultradns.net",
                    "pdns2.ultradns.net",
                    "pdns3.ultradns.org",
                    "pdns4.ultradns.org",
                    "pdns5.ultradns.info",
                    "pdns6.ultradns.co.uk",
                ],
                "statuses": ["active"],
                "dnssec": False,
                "source": "RDAP",
            },
        ),
    ],
)
async def test_org_and_uk_over_rdap(
    api: GraphQLClient, world: World, frozen: datetime, domain: str, expected: dict[str, Any]
) -> None:
    world.add_domain(domain)
    org = await helpers.organization(api)
    device = await domain_device(api, org, domain, createSslCertificate=False)
    assert registration(device) == expected
    assert device["domainDetails"]["registered"] is True
    assert world.whois.queries == []
    # Long expired (the answers are years old): updated every 24 hours, as the reference says.
    assert device["updateSchedule"]["interval"] == "PT24H"
    assert "expired" in device["updateSchedule"]["reason"]


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        (
            "google.de",  # DENIC's port 43 shows no registrar, holder or expiry
            {
                "registrar": None,
                "registrantOrganization": None,
                "createdAt": None,
                "updatedAt": "2018-03-12T20:44:25+00:00",  # Changed: 2018-03-12T21:44:25+01:00
                "expiresAt": None,
                "nameServers": GOOGLE_NS,
                "statuses": ["connect"],
                "dnssec": None,
                "source": "WHOIS",
            },
        ),
        (
            "google.io",  # offsets of -07:00 turned into UTC
            {
                "registrar": "MarkMonitor, Inc.",
                "registrantOrganization": "Google LLC",
                "createdAt": "2002-10-01T01:00:00+00:00",
                "updatedAt": "2019-08-29T09:41:07+00:00",
                "expiresAt": "2020-09-29T07:00:00+00:00",
                "nameServers": GOOGLE_NS,
                "statuses": [  # in the answer's order
                    "client update prohibited",
                    "client transfer prohibited",
                    "client delete prohibited",
                    "server update prohibited",
                    "server transfer prohibited",
                    "server delete prohibited",
                ],
                "dnssec": False,  # DNSSEC: unsigned
                "source": "WHOIS",
            },
        ),
        (
            "golang.io",  # blank statuses and a blank registrant organization
            {
                "registrar": "GANDI SAS",
                "registrantOrganization": None,
                "createdAt": "2013-01-24T18:29:21+00:00",
                "updatedAt": "2019-01-17T08:47:20+00:00",
                "expiresAt": "2020-01-24T18:29:21+00:00",
                "nameServers": ["dns103.ovh.net", "ns103.ovh.net"],
                "statuses": ["client transfer prohibited"],
                "dnssec": False,  # DNSSEC: Unsigned
                "source": "WHOIS",
            },
        ),
    ],
)
async def test_whois_where_the_bootstrap_has_no_rdap_service(
    api: GraphQLClient, world: World, frozen: datetime, domain: str, expected: dict[str, Any]
) -> None:
    world.add_domain(domain)
    org = await helpers.organization(api)
    device = await domain_device(api, org, domain, createSslCertificate=False)

    assert registration(device) == expected
    assert device["domainDetails"]["registered"] is True
    assert device["lastUpdateError"] is None
    assert rdap_domain_requests(world) == []  # no RDAP service: WHOIS straight away
    assert world.whois.queries == [domain]
    assert "WHOIS" in notes(device)[0]


@pytest.mark.parametrize(
    "fault",
    [
        RdapFault.RATE_LIMITED,
        RdapFault.SERVER_ERROR,
        RdapFault.SLOW,
        RdapFault.INVALID_JSON,
        RdapFault.NOT_A_DOMAIN,
    ],
)
async def test_rdap_failing_falls_back_to_whois(
    api: GraphQLClient, world: World, frozen: datetime, fault: RdapFault
) -> None:
    world.add_domain("google.com")
    world.rdap.set_fault("google.com", fault)
    org = await helpers.organization(api)

    started = time.monotonic()
    device = await domain_device(api, org, "google.com", createSslCertificate=False)
    assert time.monotonic() - started < 4  # the SLOW answer is not waited for

    assert registration(device) == GOOGLE_COM_WHOIS
    details = device["domainDetails"]
    assert (details["registered"], details["registrationError"]) == (True, None)
    assert device["lastUpdateError"] is None
    assert world.whois.queries == ["google.com"]
    # WHOIS's expiry (2011) drives the schedule now.
    assert device["updateSchedule"]["interval"] == "PT24H"


@pytest.mark.parametrize(
    ("rdap_fault", "whois_fault", "whois_words"),
    [
        (RdapFault.SERVER_ERROR, WhoisFault.EMPTY, "empty answer"),
        (RdapFault.RATE_LIMITED, WhoisFault.SILENT, "timed out"),
    ],
)
async def test_registration_failing_everywhere_invents_nothing_and_retries_in_an_hour(
    api: GraphQLClient,
    world: World,
    frozen: datetime,
    rdap_fault: RdapFault,
    whois_fault: WhoisFault,
    whois_words: str,
) -> None:
    world.add_domain("google.com")
    world.rdap.set_fault("google.com", rdap_fault)
    world.whois.set_fault("google.com", whois_fault)
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.com", createSslCertificate=False)

    assert registration(device) == {
        "registrar": None,
        "registrantOrganization": None,
        "createdAt": None,
        "updatedAt": None,
        "expiresAt": None,
        "nameServers": [],
        "statuses": [],
        "dnssec": None,
        "source": device["domainDetails"]["source"],
    }
    details = device["domainDetails"]
    assert details["registered"] is None  # unknown: never "not registered"
    assert "RDAP" in details["registrationError"]
    assert whois_words in details["registrationError"]
    assert device["lastUpdateError"].startswith("Registration look-up failed")
    assert whois_words in device["lastUpdateError"]
    # DNS did answer: its records are shown.
    assert details["dnsError"] is None
    assert len(details["dnsRecords"]) == 10
    assert device["updateSchedule"]["interval"] == "PT1H"
    assert device["updateSchedule"]["nextUpdateAt"] == (NOW + timedelta(hours=1)).isoformat()
    assert "failed" in device["updateSchedule"]["reason"]
    assert "Registration look-up failed" in notes(device)[0]


async def test_registration_filled_by_a_later_update_and_kept_by_a_failed_one(
    api: GraphQLClient, world: World, frozen: datetime
) -> None:
    world.add_domain("google.com")
    world.rdap.set_fault("google.com", RdapFault.SERVER_ERROR)
    world.whois.set_fault("google.com", WhoisFault.EMPTY)
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.com", createSslCertificate=False)
    assert device["domainDetails"]["registrar"] is None

    # The registry is back: the next update fills the details.
    del world.rdap.faults["google.com"]
    del world.whois.faults["google.com"]
    result = await force_update(api, device["id"])
    assert result["errors"] == []
    assert result["changed"] is True
    assert result["message"] == "The domain was updated."
    filled = result["device"]
    assert filled["domainDetails"]["registrar"] == "MarkMonitor Inc."
    assert filled["domainDetails"]["expiresAt"] == "2028-09-14T04:00:00+00:00"
    assert filled["domainDetails"]["registrationError"] is None
    assert filled["lastUpdateError"] is None
    assert filled["updateSchedule"]["interval"] == "P30D"
    assert "Registrar: (none) → MarkMonitor Inc." in notes(filled)[0]
    assert len(filled["rawFiles"]) == 2

    # Both fail again: the good details stay, the failure is recorded and retried in an hour.
    world.rdap.set_fault("google.com", RdapFault.SERVER_ERROR)
    world.whois.set_fault("google.com", WhoisFault.EMPTY)
    result = await force_update(api, device["id"])
    assert result["changed"] is False
    assert [e["code"] for e in result["errors"]] == ["LOOKUP_FAILED"]
    assert result["message"].startswith("Registration look-up failed")
    kept = result["device"]
    assert registration(kept) == registration(filled)
    assert kept["domainDetails"]["registered"] is True
    assert "empty answer" in kept["domainDetails"]["registrationError"]
    assert kept["lastUpdateError"].startswith("Registration look-up failed")
    assert kept["updateSchedule"]["interval"] == "PT1H"
    assert "Previous details kept." in notes(kept)[0]
    assert len(kept["rawFiles"]) == 2  # nothing new was learned
    assert await read(api, device["id"]) == kept


async def test_an_empty_whois_answer_is_a_failure_not_a_free_domain(
    api: GraphQLClient, world: World
) -> None:
    world.add_domain("google.de")
    world.whois.set_fault("google.de", WhoisFault.EMPTY)
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.de", createSslCertificate=False)

    details = device["domainDetails"]
    assert details["registered"] is None
    assert details["registrar"] is None and details["expiresAt"] is None
    assert "WHOIS: empty answer" in details["registrationError"]
    assert "not registered" not in notes(device)[0]
    assert device["lastUpdateError"].startswith("Registration look-up failed")
    assert device["updateSchedule"]["interval"] == "PT1H"


# --- 3. DNS records --------------------------------------------------------------------------


async def test_dns_records_are_recorded_in_presentation_form_and_a_stable_order(
    api: GraphQLClient, world: World
) -> None:
    world.add_domain("example.com")
    world.dns.set_records("example.com.", "A", ["10.0.0.2", "9.0.0.1"], ttl=60)
    world.dns.set_records("example.com.", "AAAA", ["2001:db8::10", "2001:db8::9"], ttl=60)
    world.dns.set_records("example.com.", "TXT", ['"v=spf1 -all"', '"google-site-verification=x"'])
    org = await helpers.organization(api)
    device = await domain_device(api, org, "example.com", createSslCertificate=False)

    records = [tuple(r.values()) for r in device["domainDetails"]["dnsRecords"]]
    assert records == [
        ("example.com.", "A", 60, "9.0.0.1"),
        ("example.com.", "A", 60, "10.0.0.2"),
        ("example.com.", "AAAA", 60, "2001:db8::9"),
        ("example.com.", "AAAA", 60, "2001:db8::10"),
        ("example.com.", "MX", 3600, "10 mail.example.com."),
        ("example.com.", "MX", 3600, "20 mail2.example.com."),
        ("example.com.", "NS", 300, "ns1.example.com."),
        ("example.com.", "NS", 300, "ns2.example.com."),
        ("example.com.", "TXT", 300, '"google-site-verification=x"'),
        ("example.com.", "TXT", 300, '"v=spf1 -all"'),
        (
            "example.com.",
            "SOA",
            300,
            "ns1.example.com. hostmaster.example.com. 2026112701 7200 3600 1209600 300",
        ),
        ("example.com.", "CAA", 300, '0 issue "letsencrypt.org"'),
        ("_dmarc.example.com.", "TXT", 300, '"v=DMARC1; p=reject"'),
        ("www.example.com.", "CNAME", 300, "example.com."),
    ]
    assert device["domainDetails"]["dnsError"] is None
    assert (await read(api, device["id"]))["domainDetails"]["dnsRecords"] == device[
        "domainDetails"
    ]["dnsRecords"]

    # Asked again, the same records in the same order: not a change.
    result = await force_update(api, device["id"])
    assert result["changed"] is False
    assert result["device"]["domainDetails"]["dnsRecords"] == device["domainDetails"]["dnsRecords"]
    assert len(result["device"]["rawFiles"]) == 1
    assert notes(result["device"])[0].startswith(
        "Domain details checked for example.com: no changes"
    )


async def test_www_without_a_cname_has_its_addresses_recorded(
    api: GraphQLClient, world: World
) -> None:
    world.add_domain("example.com", apex_address=False)
    org = await helpers.organization(api)
    device = await domain_device(api, org, "example.com", createSslCertificate=False)
    records = [(r["name"], r["type"], r["value"]) for r in device["domainDetails"]["dnsRecords"]]
    assert ("www.example.com.", "A", "127.0.0.1") in records
    assert not any(r[1] == "CNAME" for r in records)
    assert not any(r[:2] == ("example.com.", "A") for r in records)


@pytest.mark.parametrize(
    ("fault", "rtype"),
    [("servfail", None), ("servfail", "MX"), ("timeout", None), ("refused", "CAA")],
)
async def test_dns_failing_after_registration_retries_in_an_hour(
    api: GraphQLClient, world: World, frozen: datetime, fault: Fault, rtype: str | None
) -> None:
    world.add_domain("example.com")
    world.dns.set_fault("example.com.", fault, rtype=rtype)
    org = await helpers.organization(api)
    device = await domain_device(api, org, "example.com", createSslCertificate=False)

    details = device["domainDetails"]
    assert details["registered"] is True
    assert details["registrar"] == "RESERVED-Internet Assigned Numbers Authority"
    assert details["registrationError"] is None
    failed_types = rtype or "A/AAAA/MX/NS/TXT/SOA/CAA"
    assert details["dnsError"] == f"DNS look-up failed ({fault}: example.com. {failed_types})"
    # On a first look-up what did answer is kept; what failed is named in dnsError.
    shown = {(r["name"], r["type"]) for r in details["dnsRecords"]}
    assert ("_dmarc.example.com.", "TXT") in shown
    assert not any(
        name == "example.com." and (rtype is None or kind == rtype) for name, kind in shown
    )
    assert device["lastUpdateError"] == details["dnsError"]
    schedule = device["updateSchedule"]
    assert schedule["interval"] == "PT1H"
    assert schedule["nextUpdateAt"] == (NOW + timedelta(hours=1)).isoformat()
    assert "DNS" in schedule["reason"]
    assert "DNS look-up failed" in notes(device)[0]


async def test_nxdomain_apex_is_an_answer_not_a_failure(
    api: GraphQLClient, world: World, frozen: datetime
) -> None:
    # Registered at the registry, but not in the DNS (e.g. a parked registration).
    load_parent_zone(world, "com")
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.com", createSslCertificate=False)

    details = device["domainDetails"]
    assert details["registrar"] == "MarkMonitor Inc."
    assert details["dnsRecords"] == []
    assert details["dnsError"] is None
    assert device["lastUpdateError"] is None
    assert device["updateSchedule"]["interval"] == "P30D"
    assert "google.com does not exist (NXDOMAIN)" in notes(device)[0]


async def test_dns_failure_keeps_the_previous_records_and_changes_are_noted(
    api: GraphQLClient, world: World
) -> None:
    world.add_domain("example.com")
    org = await helpers.organization(api)
    device = await domain_device(api, org, "example.com", createSslCertificate=False)
    good = device["domainDetails"]["dnsRecords"]

    world.dns.set_fault("example.com.", "servfail", rtype="MX")
    result = await force_update(api, device["id"])
    # Registration was read: the domain was updated, the DNS error says what is missing.
    assert result["message"] == "The domain was updated."
    assert [e["code"] for e in result["errors"]] == ["DNS_LOOKUP_FAILED"]
    failed = result["device"]
    assert failed["domainDetails"]["dnsRecords"] == good
    assert "servfail: example.com. MX" in failed["domainDetails"]["dnsError"]
    assert failed["updateSchedule"]["interval"] == "PT1H"
    assert "DNS" in failed["updateSchedule"]["reason"]
    assert "previous records kept" in notes(failed)[0]
    assert len(failed["rawFiles"]) == 1

    # DNS answers again, with a new MX: the change is noted, with a RAW file.
    world.dns.clear_faults()
    world.dns.set_records("example.com.", "MX", ["10 mx.example.net."], ttl=3600)
    result = await force_update(api, device["id"])
    assert result["errors"] == []
    assert result["changed"] is True
    updated = result["device"]
    assert updated["domainDetails"]["dnsError"] is None
    assert updated["lastUpdateError"] is None
    assert updated["updateSchedule"]["interval"] != "PT1H"
    mx = [r["value"] for r in updated["domainDetails"]["dnsRecords"] if r["type"] == "MX"]
    assert mx == ["10 mx.example.net."]
    note = notes(updated)[0]
    assert "DNS Records: 10 record(s) → 9 record(s)" in note
    assert "+example.com. MX 10 mx.example.net." in note
    assert "-example.com. MX 10 mail.example.com." in note
    assert "-example.com. MX 20 mail2.example.com." in note
    assert len(updated["rawFiles"]) == 2


async def test_a_ttl_change_alone_is_not_a_change_of_the_domain(
    api: GraphQLClient, world: World
) -> None:
    world.add_domain("example.com")
    org = await helpers.organization(api)
    device = await domain_device(api, org, "example.com", createSslCertificate=False)

    world.dns.set_records("example.com.", "MX", ["10 mail.example.com.", "20 mail2.example.com."])
    result = await force_update(api, device["id"])
    assert result["changed"] is False
    assert len(result["device"]["rawFiles"]) == 1
    assert "no changes" in notes(result["device"])[0]
    ttls = {r["ttl"] for r in result["device"]["domainDetails"]["dnsRecords"] if r["type"] == "MX"}
    assert ttls == {300}  # what is shown is what the DNS says now


# --- 4. manual registration details ------------------------------------------------------------


async def test_manual_expiry_and_registrar_on_a_domain(
    api: GraphQLClient, world: World, frozen: datetime
) -> None:
    world.add_domain("google.com")
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.com", createSslCertificate=False)
    expiry = NOW + timedelta(days=20)

    payload = await update(
        api, device["id"], expiresAt=expiry.isoformat(), registrar="Example Registrar, LLC"
    )
    assert payload["errors"] == []
    edited = payload["device"]
    details = edited["domainDetails"]
    assert details["source"] == "MANUAL"
    assert details["expiresAt"] == expiry.isoformat()
    assert details["registrar"] == "Example Registrar, LLC"
    assert details["nameServers"] == GOOGLE_NS  # what the registry said otherwise stays
    schedule = edited["updateSchedule"]
    assert schedule["interval"] == "PT48H"
    assert schedule["nextUpdateAt"] == (NOW + timedelta(hours=48)).isoformat()
    assert "20 days" in schedule["reason"]
    note = notes(edited)[0]
    assert note.startswith("Registration details entered manually")
    assert "Registrar: MarkMonitor Inc. → Example Registrar, LLC" in note
    assert f"Expires: 2028-09-14T04:00:00+00:00 → {expiry.isoformat()}" in note
    assert await read(api, device["id"]) == edited


@pytest.mark.parametrize(("days", "interval"), [(3, "PT24H"), (45, "P7D"), (200, "P30D")])
async def test_manual_expiry_on_a_domain_without_details_sets_the_schedule(
    api: GraphQLClient, world: World, frozen: datetime, days: int, interval: str
) -> None:
    world.rdap.set_fault("google.com", RdapFault.SERVER_ERROR)
    world.whois.set_fault("google.com", WhoisFault.EMPTY)
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.com", createSslCertificate=False)
    assert device["updateSchedule"]["interval"] == "PT1H"

    expiry = NOW + timedelta(days=days)
    edited = (await update(api, device["id"], expiresAt=expiry.isoformat()))["device"]
    assert edited["domainDetails"]["source"] == "MANUAL"
    assert edited["domainDetails"]["expiresAt"] == expiry.isoformat()
    assert edited["domainDetails"]["registrar"] is None
    assert edited["updateSchedule"]["interval"] == interval
    assert f"Expires: (none) → {expiry.isoformat()}" in notes(edited)[0]


@pytest.mark.parametrize("fields", [{"expiresAt": "2030-01-01T00:00:00+00:00"}, {"registrar": "X"}])
async def test_manual_registration_details_on_an_ssl_device_are_refused(
    api: GraphQLClient, world: World, fields: dict[str, Any]
) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, world.host("good.test"))
    before = (await api.ok(queries.DEVICE, id=device["id"]))["device"]

    payload = await update(api, device["id"], **fields)
    assert payload["device"] is None
    [error] = payload["errors"]
    assert error["code"] == "INVALID_INPUT"
    assert error["field"] in ("expiresAt", "registrar")
    assert (await api.ok(queries.DEVICE, id=device["id"]))["device"] == before


# --- 5. the SSL child --------------------------------------------------------------------------


async def _contract(api: GraphQLClient, org: str) -> str:
    data = await api.ok(queries.CREATE_CONTRACT, org=org, name="Web hosting")
    return str(data["createContract"]["contract"]["id"])


async def test_a_domain_serving_a_certificate_gets_an_ssl_child(
    api: GraphQLClient, world: World
) -> None:
    world.add_domain("google.com")
    org = await helpers.organization(api)
    contract = await _contract(api, org)
    device = await domain_device(api, org, "google.com", contractId=contract)

    [child] = device["children"]
    served = _domain_certificate("google.com").leaf.cert
    assert child["category"] == "SSL_CERTIFICATE"
    assert child["active"] is True
    assert child["organization"] == {"id": org}
    assert child["contract"] == {"id": contract}
    assert child["parent"] == {"id": device["id"]}
    assert child["sslSource"] == {"kind": "HOST", "host": "google.com", "port": world.tls_port}
    assert child["sslDetails"]["commonName"] == "google.com"
    assert (
        child["sslDetails"]["fingerprintSha256"]
        == served.fingerprint(hashes.SHA256()).hex(":").upper()
    )
    assert child["updateSchedule"] is not None
    assert len(child["rawFiles"]) == 1
    assert any("google.com" in n for n in notes(child))
    assert any(n.startswith("SSL Certificate device created") for n in notes(device))
    assert "google.com" in world.tls.server_names_seen

    read_child = (await api.ok(queries.DEVICE, id=child["id"]))["device"]
    assert read_child["parent"] == {"id": device["id"]}
    assert read_child["domain"] is None
    assert (await read(api, device["id"]))["children"] == device["children"]
    assert await helpers.device_count(api) == 2


async def test_the_child_is_found_on_www_when_the_apex_has_no_address(
    api: GraphQLClient, world: World
) -> None:
    world.add_domain("example.com", apex_address=False)
    org = await helpers.organization(api)
    device = await domain_device(api, org, "example.com")

    [child] = device["children"]
    assert child["sslSource"] == {
        "kind": "HOST",
        "host": "www.example.com",
        "port": world.tls_port,
    }
    assert child["sslDetails"]["commonName"] == "www.example.com"
    assert world.tls.server_names_seen == ["www.example.com"]


async def test_a_certificate_covering_www_wins_over_an_apex_default_certificate(
    api: GraphQLClient, world: World
) -> None:
    # The apex answers with the server's default certificate (not for example.com).
    world.add_domain("example.com", www=False)
    world.dns.load({"www.example.com.": {"A": "127.0.0.1"}}, origin="example.com.")
    org = await helpers.organization(api)
    device = await domain_device(api, org, "example.com")

    [child] = device["children"]
    assert child["sslSource"]["host"] == "www.example.com"
    assert child["sslDetails"]["commonName"] == "www.example.com"
    assert world.tls.server_names_seen == ["example.com", "www.example.com"]


async def test_no_certificate_anywhere_means_no_child_and_a_note(
    api: GraphQLClient, world: World
) -> None:
    world.add_domain("themarquetry.com", www=False, apex_address=False)
    org = await helpers.organization(api)
    device = await domain_device(api, org, "themarquetry.com")

    assert device["children"] == []
    [note] = [n for n in notes(device) if "SSL certificate" in n]
    assert note.startswith("No SSL certificate was found for the domain")
    assert "themarquetry.com" in note and "www.themarquetry.com" in note
    assert device["domainDetails"]["registered"] is True
    assert world.tls.connections == []
    assert await helpers.device_count(api) == 1


async def test_no_child_is_looked_for_when_not_asked(api: GraphQLClient, world: World) -> None:
    world.add_domain("google.com")
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.com", createSslCertificate=False)

    assert device["children"] == []
    assert world.tls.connections == []
    assert not any("SSL" in n for n in notes(device))
    assert await helpers.device_count(api) == 1


async def test_an_inactive_domain_gets_an_inactive_child_and_no_jobs(
    api: GraphQLClient, world: World
) -> None:
    world.add_domain("google.com")
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.com", active=False)

    assert device["active"] is False
    assert device["updateSchedule"] is None
    assert device["domainDetails"]["registrar"] == "MarkMonitor Inc."  # still looked up
    [child] = device["children"]
    assert child["active"] is False
    assert child["updateSchedule"] is None
    assert child["sslDetails"]["commonName"] == "google.com"


# --- "Save & Update Domain Detail" -------------------------------------------------------------


async def test_save_and_update_looks_up_again_and_notes_it(
    api: GraphQLClient, world: World
) -> None:
    world.add_domain("google.com")
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.com", createSslCertificate=False)
    asked = len(rdap_domain_requests(world))

    payload = await update(api, device["id"], update_details=True, description="Main domain")
    assert payload["errors"] == []
    saved = payload["device"]
    assert saved["domainDetails"] == device["domainDetails"]
    assert len(rdap_domain_requests(world)) > asked
    assert notes(saved)[0].startswith("Domain details checked for google.com: no changes.")
    assert len(saved["rawFiles"]) == 1


# --- changing the domain -----------------------------------------------------------------------


async def test_a_new_domain_does_not_inherit_the_old_ones_details(
    api: GraphQLClient, world: World, frozen: datetime
) -> None:
    world.add_domain("google.com")
    org = await helpers.organization(api)
    device = await domain_device(api, org, "google.com", createSslCertificate=False)
    assert device["domainDetails"]["registrar"] == "MarkMonitor Inc."

    # The new domain's look-ups fail: nothing of google.com may be shown as its details.
    world.rdap.set_fault("example.net", RdapFault.SERVER_ERROR)
    world.whois.set_fault("example.net", WhoisFault.EMPTY)
    payload = await update(api, device["id"], domain="example.net")
    assert [e["code"] for e in payload["errors"]] == ["LOOKUP_FAILED"]
    moved = payload["device"]
    assert moved["domain"] == "example.net"
    details = moved["domainDetails"]
    assert details["registrar"] is None
    assert details["expiresAt"] is None
    assert details["nameServers"] == []
    assert not any("google" in r["name"] for r in details["dnsRecords"])
    assert moved["updateSchedule"]["interval"] == "PT1H"
    assert notes(moved)[0].startswith("Domain details looked up for example.net")
    assert len(moved["rawFiles"]) == 2

    # Now a wildcard: no details at all, no job, no error of the previous domain.
    moved = (await update(api, device["id"], domain="*.example.org"))["device"]
    assert moved["domain"] == "*.example.org"
    assert moved["domainDetails"] is None
    assert moved["updateSchedule"] is None
    assert moved["lastUpdateError"] is None
    assert moved["lastUpdatedAt"] is None
    assert "wildcard" in notes(moved)[0]
    assert notes(moved)[1] == "Domain changed to *.example.org."

    # And back to a real one: looked up afresh.
    moved = (await update(api, device["id"], domain="https://www.google.com/"))["device"]
    assert moved["domain"] == "google.com"
    assert moved["domainDetails"]["registrar"] == "MarkMonitor Inc."
    assert moved["updateSchedule"]["interval"] == "P30D"
    assert notes(moved)[0].startswith("Domain details looked up for google.com")
