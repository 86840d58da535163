"""Pure parsing of real registry answers (fixtures: tests/fixtures/registry/PROVENANCE.md)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tracking.core.changes import Change
from tracking.core.registration import (
    ParseError,
    RegistrationDetails,
    ascii_domain,
    merge_details,
    normalize_statuses,
    parse_rdap_domain,
    registration_changes,
)
from tracking.core.whois_text import is_whois_not_found, parse_whois_text

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "registry"
GOOGLE_NS = ("ns1.google.com", "ns2.google.com", "ns3.google.com", "ns4.google.com")


def rdap(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "rdap" / "domains" / name).read_text("utf-8"))
    return data


def whois_text(path: str) -> str:
    return (FIXTURES / "whois" / path).read_bytes().decode("utf-8")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- RDAP ---------------------------------------------------------------------------------------


def test_rdap_verisign_google_com() -> None:
    details = parse_rdap_domain(rdap("verisign__google.com.json"))
    assert details == RegistrationDetails(
        registrar="MarkMonitor Inc.",
        registrant_organization=None,
        created_at=utc(1997, 9, 15, 4),
        updated_at=utc(2019, 9, 9, 15, 39, 4),
        expires_at=utc(2028, 9, 14, 4),
        name_servers=GOOGLE_NS,
        statuses=(
            "client delete prohibited",
            "client transfer prohibited",
            "client update prohibited",
            "server delete prohibited",
            "server transfer prohibited",
            "server update prohibited",
        ),
        dnssec=False,
        source="RDAP",
    )


def test_rdap_markmonitor_registrar_record() -> None:
    """Offsets without a colon, registrar named by ``org``, non-standard ``last update``."""
    details = parse_rdap_domain(rdap("markmonitor__google.com.json"))
    assert details.registrar == "MarkMonitor Inc."
    assert details.registrant_organization == "Google LLC"
    assert details.expires_at == utc(2028, 9, 13, 7)
    assert details.created_at == utc(1997, 9, 15, 7)
    assert details.updated_at == utc(2019, 9, 9, 15, 39, 4)
    assert details.name_servers == GOOGLE_NS


def test_rdap_signed_delegation_and_no_last_changed() -> None:
    details = parse_rdap_domain(rdap("verisign__example.com.json"))
    assert details.registrar == "RESERVED-Internet Assigned Numbers Authority"
    assert details.dnssec is True
    assert details.updated_at is None  # "last update of RDAP database" is not a domain change
    assert details.expires_at == utc(2021, 8, 13, 4)
    assert details.name_servers == ("a.iana-servers.net", "b.iana-servers.net")


def test_rdap_norid_has_no_expiration() -> None:
    details = parse_rdap_domain(rdap("norid__norway.no.json"))
    assert details.expires_at is None
    assert details.registrar == "Domeneshop AS"
    assert details.created_at == utc(2017, 1, 24, 12, 9, 23)
    assert details.updated_at == utc(2021, 1, 14, 5, 16, 59)
    assert details.dnssec is None
    assert details.statuses == ()
    assert details.name_servers == (
        "ns1-09.azure-dns.com",
        "ns2-09.azure-dns.net",
        "ns3-09.azure-dns.org",
        "ns4-09.azure-dns.info",
    )


def test_rdap_cznic_registrar_by_handle() -> None:
    details = parse_rdap_domain(rdap("cznic__example.cz.json"))
    assert details.registrar == "REG-INTERNET-CZ"
    assert details.registrant_organization is None  # the registrant entity has no vCard
    assert details.created_at == utc(2004, 8, 30, 22, 55)
    assert details.expires_at == utc(2019, 8, 30, 12)
    assert details.statuses == ("active",)
    assert details.name_servers == ("ns.pipni.cz", "ns2.pipni.cz", "ns3.pipni.cz")


def test_rdap_org_adapted_registrant_org_published_name_redacted() -> None:
    details = parse_rdap_domain(rdap("pir__apache.org.json"))
    assert details == RegistrationDetails(
        registrar="NAMECHEAP INC",
        registrant_organization="The Apache Software Foundation",
        created_at=utc(1995, 4, 11, 4),
        updated_at=utc(2018, 9, 25, 13, 18, 21),
        expires_at=utc(2022, 4, 12, 4),
        name_servers=(
            "ns1.no-ip.com",
            "ns2.no-ip.com",
            "ns2.surfnet.nl",
            "ns3.no-ip.com",
            "ns4.no-ip.com",
        ),
        statuses=("client delete prohibited", "client transfer prohibited"),
        dnssec=False,
        source="RDAP",
    )


def test_rdap_uk_adapted_redacted_registrant_and_trailing_dot() -> None:
    details = parse_rdap_domain(rdap("nominet__amazon.co.uk.json"))
    assert details.registrar == "Amazon.com, Inc. t/a Amazon.com, Inc."
    assert details.registrant_organization is None
    assert details.expires_at == utc(2020, 12, 5)
    assert details.created_at == utc(1996, 8, 1)
    assert details.updated_at == utc(2013, 10, 23)
    assert details.statuses == ("active",)
    assert len(details.name_servers) == 10
    assert "pdns6.ultradns.co.uk" in details.name_servers


@pytest.mark.parametrize(
    "data",
    [
        {"objectClassName": "entity", "handle": "X"},
        {"objectClassName": "domain", "ldhName": "example.com"},
        {"errorCode": 404, "title": "Not Found"},
    ],
)
def test_rdap_without_registration_data(data: dict[str, Any]) -> None:
    with pytest.raises(ParseError):
        parse_rdap_domain(data)


def test_rdap_tolerates_odd_shapes() -> None:
    details = parse_rdap_domain(
        {
            "objectClassName": "domain",
            "events": [
                {"eventAction": "expiration", "eventDate": "not a date"},
                {"eventAction": "expiration", "eventDate": "2030-01-01T00:00:00+02:00"},
                "junk",
            ],
            "entities": [{"roles": ["registrar"], "vcardArray": ["vcard"]}, "junk"],
            "nameservers": "not a list",
            "secureDNS": {"dsData": [{"keyTag": 1}]},
        }
    )
    assert details.expires_at == utc(2029, 12, 31, 22)
    assert details.registrar is None
    assert details.dnssec is True


# --- WHOIS --------------------------------------------------------------------------------------


def test_whois_verisign_2006_google_com() -> None:
    """Many "Server Name:" look-alikes; only the domain's own fields are taken."""
    details = parse_whois_text("google.com", whois_text("raw/google.com"))
    assert details == RegistrationDetails(
        registrar="MARKMONITOR INC.",
        created_at=utc(1997, 9, 15),
        updated_at=utc(2006, 4, 10),
        expires_at=utc(2011, 9, 14),
        name_servers=GOOGLE_NS,
        statuses=(
            "client delete prohibited",
            "client transfer prohibited",
            "client update prohibited",
        ),
        source="WHOIS",
    )


def test_whois_verisign_thin_answer() -> None:
    details = parse_whois_text("urlowl.com", whois_text("raw/urlowl.com"))
    assert details.registrar == "DYNADOT, LLC"
    assert details.expires_at == utc(2018, 2, 21, 19, 24, 57)
    assert details.created_at == utc(2013, 2, 21, 19, 24, 57)
    assert details.updated_at == utc(2017, 3, 31, 7, 36, 34)
    assert details.name_servers == ("ns1.sedoparking.com", "ns2.sedoparking.com")
    assert details.statuses == ("client transfer prohibited",)
    assert details.dnssec is False
    assert details.registrant_organization is None


def test_whois_org_thick_answer() -> None:
    details = parse_whois_text("apache.org", whois_text("raw/apache.org"))
    # The same registration as the adapted RDAP answer, so no change between sources.
    assert registration_changes(parse_rdap_domain(rdap("pir__apache.org.json")), details) == []
    assert details.source == "WHOIS"


def test_whois_org_2008_format_with_fallback_dates() -> None:
    details = parse_whois_text("slashdot.org", whois_text("raw/slashdot.org"))
    assert details.registrar == "Tucows Inc. (R11-LROR)"
    assert details.registrant_organization == "SourceForge, Inc."
    assert details.created_at == utc(1997, 10, 5, 4)  # "Created On:", missed by python-whois
    assert details.updated_at == utc(2008, 6, 23, 20, 0, 11)
    assert details.expires_at == utc(2008, 10, 4, 4)
    assert details.statuses == ("active",)  # EPP "OK"
    assert details.name_servers == (
        "ns-1.ch3.sourceforge.com",
        "ns-2.ch3.sourceforge.com",
        "ns-3.corp.sourceforge.com",
    )


def test_whois_nominet() -> None:
    details = parse_whois_text("amazon.co.uk", whois_text("raw/amazon.co.uk"))
    assert details.registrar == "Amazon.com, Inc. t/a Amazon.com, Inc. [Tag = AMAZON-COM]"
    assert details.created_at == utc(1996, 8, 1)  # "before Aug-1996"
    assert details.expires_at == utc(2020, 12, 5)
    assert details.updated_at == utc(2013, 10, 23)
    assert details.statuses == ("Registered until expiry date.",)
    assert len(details.name_servers) == 10
    assert "pdns6.ultradns.co.uk" in details.name_servers  # the address after it is dropped
    assert details.dnssec is None


def test_whois_nominet_without_registrar() -> None:
    details = parse_whois_text("gov.uk", whois_text("raw/www.gov.uk"))
    assert details.registrar is None  # "No registrar listed. ..."
    assert details.statuses == ()  # "No registration status listed."
    assert details.created_at == utc(1996, 8, 1)
    assert details.expires_at is None


def test_whois_denic() -> None:
    details = parse_whois_text("google.de", whois_text("raw/google.de"))
    assert details == RegistrationDetails(
        updated_at=utc(2018, 3, 12, 20, 44, 25),  # 21:44:25+01:00
        name_servers=GOOGLE_NS,
        statuses=("connect",),
        source="WHOIS",
    )


def test_whois_denic_first_changed_is_the_domain_and_dnskey_means_signed() -> None:
    details = parse_whois_text("web.de", whois_text("raw/web.de"))
    assert details.updated_at == utc(2016, 4, 11, 9, 9, 54)  # not the Tech-C's "Changed:"
    assert details.dnssec is True
    assert details.expires_at is None  # DENIC publishes none
    assert details.name_servers == (
        "ns-webde.ui-dns.biz",
        "ns-webde.ui-dns.com",
        "ns-webde.ui-dns.de",
        "ns-webde.ui-dns.org",
    )


def test_whois_io_registrar_expiry_and_offsets() -> None:
    details = parse_whois_text("google.io", whois_text("raw/google.io"))
    assert details == RegistrationDetails(
        registrar="MarkMonitor, Inc.",
        registrant_organization="Google LLC",
        created_at=utc(2002, 10, 1, 1),  # 2002-09-30T18:00:00-0700
        updated_at=utc(2019, 8, 29, 9, 41, 7),
        expires_at=utc(2020, 9, 29, 7),  # "Registrar Registration Expiration Date"
        name_servers=GOOGLE_NS,
        statuses=(
            "client update prohibited",
            "client transfer prohibited",
            "client delete prohibited",
            "server update prohibited",
            "server transfer prohibited",
            "server delete prohibited",
        ),
        dnssec=False,
        source="WHOIS",
    )


def test_whois_io_redacted_and_blank_lines() -> None:
    details = parse_whois_text("golang.io", whois_text("raw/golang.io"))
    assert details.registrar == "GANDI SAS"
    assert details.registrant_organization is None  # "Registrant Organization: " is blank
    assert details.expires_at == utc(2020, 1, 24, 18, 29, 21)
    assert details.name_servers == ("dns103.ovh.net", "ns103.ovh.net")
    assert details.statuses == ("client transfer prohibited",)


def test_whois_registrar_answer() -> None:
    details = parse_whois_text("he.net", whois_text("raw/he.net"))
    assert details.registrar == "Network Solutions, LLC"
    assert details.registrant_organization == "Hurricane Electric Hostmaster"
    assert details.expires_at == utc(2029, 7, 30, 4)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "WHOIS LIMIT EXCEEDED - SEE WWW.PIR.ORG/WHOIS FOR DETAILS\n",
        "Your connection limit exceeded. Please slow down and try again later.\n",
        "This TLD has no whois server, but you can access the whois database at\nhttp://x\n",
        "Registrar: \nName Server: \n",
    ],
)
def test_whois_without_registration_data(text: str) -> None:
    with pytest.raises(ParseError):
        parse_whois_text("example.com", text)


NIC_CHILE = """%%
%% This is the NIC Chile Whois server (whois.nic.cl).
%%
Domain name: ejemplo.cl
Registrant name: Ejemplo SpA
Registrar name: NIC Chile
Creation date: 2010-07-01 09:30:00 CLT
Expiration date: 2027-05-16 12:00:00 CLST
Name server: ns1.ejemplo.cl
"""


def test_whois_dates_keep_the_zone_the_registry_prints() -> None:
    """python-whois's .cl parser drops "CLST"/"CLT"; the instants are those NIC Chile means."""
    details = parse_whois_text("ejemplo.cl", NIC_CHILE)
    assert details.expires_at == utc(2027, 5, 16, 15)  # CLST is UTC-3
    assert details.created_at == utc(2010, 7, 1, 13, 30)  # CLT is UTC-4


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Expiration date: 2027-05-16 12:00:00 UTC", utc(2027, 5, 16, 12)),
        ("Expiration date: 2027-05-16 12:00:00", utc(2027, 5, 16, 12)),  # no zone: UTC
        ("Expiration date: 2027-05-16 12:00:00 CLST", utc(2027, 5, 16, 15)),
        ("Expiration date: 2027-05-16T12:00:00-03:00", utc(2027, 5, 16, 15)),
    ],
)
def test_cl_expiry_lines(line: str, expected: datetime) -> None:
    text = NIC_CHILE.replace("Expiration date: 2027-05-16 12:00:00 CLST", line)
    assert parse_whois_text("ejemplo.cl", text).expires_at == expected


def test_a_zone_printed_elsewhere_does_not_move_an_offset_read_right() -> None:
    """The zone of a later line (another date) is not applied to a date read with its offset."""
    text = (
        "Domain Name: example.io\n"
        "Registrar: Example Registrar\n"
        "Registry Expiry Date: 2027-05-16T12:00:00Z\n"
        "Expiration Date: 2027-05-16 12:00:00 CLST\n"
    )
    assert parse_whois_text("example.io", text).expires_at == utc(2027, 5, 16, 12)


def test_whois_unknown_date_format_keeps_the_rest() -> None:
    text = "Domain Name: EXAMPLE.COM\nRegistrar: Example Registrar\nCreation Date: sometime\n"
    details = parse_whois_text("example.com", text)
    assert details.registrar == "Example Registrar"
    assert details.created_at is None


# --- not found ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["notfound.verisign", "notfound.nominet", "notfound.denic", "notfound.pir", "notfound.io"],
)
def test_not_found_answers(name: str) -> None:
    assert is_whois_not_found(whois_text(f"adapted/{name}"))


@pytest.mark.parametrize(
    "text",
    [
        'No match for "EXAMPLE.COM".',
        "%% NOT FOUND",
        "No Data Found",
        "The queried object does not exist: DOMAIN NOT FOUND",
        "% No entries found for the selected source(s).",
        "%ERROR:101: no entries found",
        "Status: AVAILABLE",
        "example.nl is free",
        "No information available about domain name example.pl in the Registry NASK database.",
        "We do not have an entry in our database matching your query.",
        "% nothing found",
        "No matching record.",
        "Domain example.io is available for purchase",
        "No match!!",
    ],
)
def test_not_found_phrases(text: str) -> None:
    assert is_whois_not_found(f"% header\n{text}\n% footer\n")


@pytest.mark.parametrize("path", sorted((FIXTURES / "whois" / "raw").iterdir()))
def test_registered_answers_are_not_taken_for_not_found(path: Path) -> None:
    assert not is_whois_not_found(path.read_bytes().decode("utf-8"))


@pytest.mark.parametrize(
    "text",
    [
        "NOTICE: if the record is not found, contact the registrar.",
        "Status: connect",
        "Domain Status: clientTransferProhibited",
        "Your connection limit exceeded.",  # a rate limit is a failure, not "free"
    ],
)
def test_not_found_needs_a_whole_statement(text: str) -> None:
    assert not is_whois_not_found(text)


# --- value object -------------------------------------------------------------------------------


def test_details_normalize_their_fields() -> None:
    details = RegistrationDetails(
        registrar="  Example   Registrar ",
        registrant_organization="REDACTED FOR PRIVACY",
        expires_at=datetime(2030, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
        created_at=datetime(2000, 1, 1),
        name_servers=("NS2.Example.NET.", "ns1.example.net", "ns1.example.net 192.0.2.1"),
        statuses=("clientHold https://icann.org/epp#clientHold", "client hold", "OK", "Weird"),
        source="WHOIS",
    )
    assert details.registrar == "Example Registrar"
    assert details.registrant_organization is None
    assert details.expires_at == utc(2030, 1, 1)
    assert details.created_at == utc(2000, 1, 1)
    assert details.name_servers == ("ns1.example.net", "ns2.example.net")
    assert details.statuses == ("client hold", "active", "Weird")


def test_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError):
        RegistrationDetails(source="DNS")


def test_merge_fills_only_gaps() -> None:
    registry = parse_rdap_domain(rdap("verisign__google.com.json"))
    registrar = parse_rdap_domain(rdap("markmonitor__google.com.json"))
    merged = merge_details(registry, registrar)
    assert merged.registrant_organization == "Google LLC"
    assert merged.expires_at == registry.expires_at  # the registry's date, not the registrar's
    assert merged.source == "RDAP"


def test_normalize_statuses_keeps_order_and_drops_blanks() -> None:
    assert normalize_statuses(["ok", "", "  ", "serverHold", "ACTIVE"]) == ("active", "server hold")


def test_ascii_domain() -> None:
    assert ascii_domain("Bücher.DE.") == "xn--bcher-kva.de"
    assert ascii_domain("example.com") == "example.com"


# --- changes ------------------------------------------------------------------------------------


def test_changes_from_nothing_list_every_filled_field() -> None:
    new = RegistrationDetails(registrar="R", expires_at=utc(2030, 1, 1), dnssec=False)
    assert registration_changes(None, new) == [
        Change("registrar", "Registrar", None, "R"),
        Change("expires_at", "Expires", None, "2030-01-01T00:00:00+00:00"),
        Change("dnssec", "DNSSEC", None, "unsigned"),
    ]


def test_changes_between_two_audits() -> None:
    old = parse_rdap_domain(rdap("verisign__google.com.json"))
    new = dataclasses.replace(
        old,
        expires_at=utc(2029, 9, 14, 4),
        name_servers=("ns1.google.com",),
        dnssec=True,
        source="WHOIS",  # not a change of the domain
    )
    assert registration_changes(old, new) == [
        Change("expires_at", "Expires", "2028-09-14T04:00:00+00:00", "2029-09-14T04:00:00+00:00"),
        Change("name_servers", "Name servers", ", ".join(GOOGLE_NS), "ns1.google.com"),
        Change("dnssec", "DNSSEC", "unsigned", "signed"),
    ]
    assert registration_changes(old, old) == []
