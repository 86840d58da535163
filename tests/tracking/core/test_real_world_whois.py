"""WHOIS parsing over every real WHOIS answer we hold, against upstream parsers' expectations.

Corpus (tests/fixtures/registry/PROVENANCE.md): ``whois/raw/<domain>``, real registry answers
byte for byte; ``whois/expected/<domain>.json`` is what python-whois's parser extracts from the
same text, ``whois/expected/likexian/<domain>.json`` what likexian/whois-parser extracts (for
the .io/.au/.org/.net samples python-whois has none of).

Each answer goes the registration probe's way (``tracking/probes/registration.py``): bytes
decoded like the WHOIS probe decodes them, ``is_whois_not_found`` (must say "registered"), then
``parse_whois_text``. The fields our record shares with upstream are compared: registrar,
created_at, updated_at, expires_at. Dates are compared as instants (upstream keeps the
registry's offset, e.g. ``+09:00``; we normalize to UTC, checked on its own).

Upstream is not our contract: dstrack must be right even where an upstream expectation is
wrong. Where we differ on purpose, ``OURS`` holds our value and why (six of them were bugs of
ours this corpus found); where the upstream expectation is plainly wrong, the entry says so. A
registrar or expiry date that stays null must be explained in ``NOT_PUBLISHED``.

Deliberately different from python-whois: google.cl's dates. NIC Chile prints
"2019-11-20 14:48:02 CLST" (CLST is UTC-3); python-whois's .cl parser drops the zone, so its
expected instants are 3 hours early. dstrack reads the zone: 17:48:02 UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tracking.core.registration import RegistrationDetails
from tracking.core.whois_text import is_whois_not_found, parse_whois_text
from tracking.probes.whois import _decode as decode_whois_answer  # what the probe parses

WHOIS = Path(__file__).resolve().parents[2] / "fixtures" / "registry" / "whois"
RAW = WHOIS / "raw"
EXPECTED = WHOIS / "expected"
EXPECTED_LIKEXIAN = EXPECTED / "likexian"

FIELDS = ("registrar", "created_at", "updated_at", "expires_at")
DATE_FIELDS = FIELDS[1:]

# Our field -> the upstream JSON's key (python-whois) or path (likexian's own schema).
PYTHON_WHOIS_KEYS = {
    "registrar": "registrar",
    "created_at": "creation_date",
    "updated_at": "updated_date",
    "expires_at": "expiration_date",
}
LIKEXIAN_PATHS = {
    "registrar": ("registrar", "name"),
    "created_at": ("domain", "created_date"),
    "updated_at": ("domain", "updated_date"),
    "expires_at": ("domain", "expiration_date"),
}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- (b) our value differs from upstream's and is the one the contract wants -----------------

OURS: dict[str, dict[str, Any]] = {
    "davidwalsh.name": {
        # Verisign's .name answer says " Registrar: Name.com, Inc."; python-whois's .name
        # parser has no pattern for it (null), our fallback finds it.
        "registrar": "Name.com, Inc.",
    },
    "www.gov.uk": {
        # Upstream copies the sentence "No registrar listed.  This domain is directly
        # registered with Nominet." as the registrar's name; there is none: null.
        "registrar": None,
    },
    "slashdot.org": {
        # 2008 PIR layout "Created On:" / "Last Updated On:", unknown to python-whois's .org
        # parser (null); the dates are in the answer and our fallback reads them.
        "created_at": utc(1997, 10, 5, 4),
        "updated_at": utc(2008, 6, 23, 20, 0, 11),
    },
    # Upstream lists every value a field has in the text (contacts' and registrars' blocks
    # too); our record holds one, the first: the domain's own block comes first.
    "allegro.pl": {
        "updated_at": utc(2017, 10, 17, 7, 1, 25),  # not the REGISTRAR block's 2017.03.27
    },
    "google.com.br": {
        "created_at": utc(1999, 5, 18),  # not the nic-hdl-br contacts' 2010/2002 dates
        "updated_at": utc(2019, 4, 17),
    },
    "web.de": {
        "updated_at": utc(2016, 4, 11, 9, 9, 54),  # 11:09:54+02:00, not the [Tech-C]'s
    },
    "willhaben.at": {
        "updated_at": utc(2014, 12, 4, 14, 57, 44),  # not the two contact objects' "changed:"
    },
    # An old Verisign answer listing look-alike "Server Name: MICROSOFT.COM.<junk>" records, each
    # with a registrar; python-whois keeps the last one (CRONON AG). The "Domain Name:
    # MICROSOFT.COM" record says TUCOWS INC.
    "microsoft.com": {"registrar": "TUCOWS INC."},
    # The registry's record, not the registrar's own answer appended after it ("DOMAINBANK"),
    # which python-whois keeps for being last.
    "reddit.com": {"registrar": "DSTR ACQUISITION PA I, LLC DBA DOMAINBANK.COM"},
    # UPSTREAM IS WRONG. NIC Chile prints "2002-10-22 17:48:23 CLST" and "2019-11-20 14:48:02
    # CLST"; CLST is UTC-3. python-whois's .cl parser cuts the zone off and its expected values
    # (17:48:23 and 14:48:02 UTC) are 3 hours early. Ours are the instants the registry means.
    "google.cl": {
        "created_at": utc(2002, 10, 22, 20, 48, 23),
        "expires_at": utc(2019, 11, 20, 17, 48, 2),
    },
    # JPRS (co.jp, ac.jp, ...): the date of "[State] Connected (2026/03/31)" is the expiry,
    # which python-whois does not read (null); date only, so midnight UTC.
    "titech.ac.jp": {"expires_at": utc(2026, 3, 31)},
    "yahoo.co.jp": {"expires_at": utc(2025, 9, 30)},
}


# --- (c) the answer holds no such data -----------------------------------------------------------

NOT_PUBLISHED: dict[str, dict[str, str]] = {
    "acma.gov.au": {"expires_at": "auDA's WHOIS (2019) publishes no expiry"},
    "google.com.au": {"expires_at": "auDA's WHOIS (2019) publishes no expiry"},
    "app.nl": {"expires_at": "SIDN publishes no expiry"},
    "davidwalsh.name": {"expires_at": "this thin .name answer carries no dates at all"},
    "eurid.eu": {"expires_at": "EURid publishes no dates"},
    "google.de": {
        "registrar": "DENIC publishes no registrar",
        "expires_at": "DENIC publishes no expiry",
    },
    "web.de": {
        "registrar": "DENIC publishes no registrar",
        "expires_at": "DENIC publishes no expiry",
    },
    "willhaben.at": {
        "registrar": "this nic.at answer names contacts only",
        "expires_at": "nic.at publishes no expiry",
    },
    "www.gov.uk": {
        "registrar": "directly registered with Nominet ('No registrar listed')",
        "expires_at": "'Relevant dates' has only 'Registered on: before Aug-1996'",
    },
    "yahoo.co.nz": {"expires_at": "InternetNZ publishes no expiry"},
    "google.com.br": {"registrar": "registro.br's answer names the owner and contacts only"},
    "sapo.pt": {"registrar": "DNS.PT's answer names owner and admin only"},
    "titech.ac.jp": {"registrar": "JPRS's attribute-type .jp answer names no registrar"},
    "yahoo.co.jp": {"registrar": "JPRS's attribute-type .jp answer names no registrar"},
}


# --- corpus ------------------------------------------------------------------------------------

DOMAINS = sorted(path.name for path in RAW.iterdir())


def _expectation_file(domain: str) -> Path:
    files = (EXPECTED / f"{domain}.json", EXPECTED_LIKEXIAN / f"{domain}.json")
    found = [p for p in files if p.is_file()]
    assert len(found) == 1, f"{domain}: expected exactly one of {files}"
    return found[0]


@cache
def upstream(domain: str) -> dict[str, Any]:
    """Upstream's raw values for our fields: None, a string, or a list of strings."""
    path = _expectation_file(domain)
    data = json.loads(path.read_text("utf-8"))
    if path.parent == EXPECTED_LIKEXIAN:
        return {f: data.get(a, {}).get(b) for f, (a, b) in LIKEXIAN_PATHS.items()}
    return {f: data.get(key) for f, key in PYTHON_WHOIS_KEYS.items()}


def upstream_value(domain: str, field: str) -> Any:
    value = upstream(domain)[field]
    if isinstance(value, list):
        return [_typed(field, v) for v in value]
    return _typed(field, value)


def _typed(field: str, value: Any) -> Any:
    if value is None or field not in DATE_FIELDS:
        return value
    return datetime.fromisoformat(value)  # "2006-04-10 00:00:00+00:00", "...-0700", "...Z"


@cache
def parsed(domain: str) -> RegistrationDetails:
    text = decode_whois_answer((RAW / domain).read_bytes())
    assert not is_whois_not_found(text), f"{domain}: a registered domain taken for not found"
    return parse_whois_text(domain, text)


def expected(domain: str, field: str) -> Any:
    if field in OURS.get(domain, {}):
        return OURS[domain][field]
    value = upstream_value(domain, field)
    assert not isinstance(value, list), (
        f"{domain}: upstream lists several {field} values {value}; say which is ours in OURS"
    )
    return value


def _param(domain: str, field: str) -> Any:
    return pytest.param(domain, field, id=f"{domain}:{field}")


# --- tests -------------------------------------------------------------------------------------


def test_corpus_is_complete() -> None:
    assert len(DOMAINS) == 40
    for domain in DOMAINS:
        _expectation_file(domain)
    names = {p.stem for p in EXPECTED.glob("*.json")} | {
        p.stem for p in EXPECTED_LIKEXIAN.glob("*.json")
    }
    assert names == set(DOMAINS)


@pytest.mark.parametrize("domain", DOMAINS)
def test_answer_parses_as_registered(domain: str) -> None:
    details = parsed(domain)
    assert details.source == "WHOIS"
    for field in DATE_FIELDS:
        value = getattr(details, field)
        assert value is None or value.tzinfo is UTC, f"{field} {value} is not UTC"


@pytest.mark.parametrize(
    ("domain", "field"), [_param(domain, field) for domain in DOMAINS for field in FIELDS]
)
def test_field_matches_expectation(domain: str, field: str) -> None:
    assert getattr(parsed(domain), field) == expected(domain, field)


def test_deviations_from_upstream_are_real() -> None:
    """Every OURS entry differs from upstream (else it is stale) and names a real case."""
    for domain, values in OURS.items():
        assert domain in DOMAINS
        for field, ours in values.items():
            assert field in FIELDS
            assert upstream_value(domain, field) != ours, f"{domain} {field}: same as upstream"


@pytest.mark.parametrize("domain", DOMAINS)
def test_missing_registrar_or_expiry_is_explained(domain: str) -> None:
    for field in ("registrar", "expires_at"):
        explained = field in NOT_PUBLISHED.get(domain, {})
        assert (expected(domain, field) is None) == explained, f"{domain} {field}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_line_endings_do_not_matter(domain: str) -> None:
    """Servers end lines with LF or CRLF (a quarter of this corpus): both read the same."""
    text = decode_whois_answer((RAW / domain).read_bytes()).replace("\r\n", "\n")
    assert parse_whois_text(domain, text.replace("\n", "\r\n")) == parse_whois_text(domain, text)


def test_google_cl_is_read_in_its_own_zone_not_as_upstream_expects() -> None:
    """Said twice on purpose: upstream's expected .cl instants are 3 hours early (zone dropped)."""
    details = parsed("google.cl")
    for field in ("created_at", "expires_at"):
        upstream_instant = upstream_value("google.cl", field)
        assert getattr(details, field) - upstream_instant == timedelta(hours=3), field
