"""Reading WHOIS answers: "not registered" phrases, and registration details. No I/O.

python-whois's per-TLD parsers do the bulk; fallbacks anchored at line starts fill what they
miss, and the answer's own lines decide where a parser is known to read wrong (a date whose
zone it dropped, a registrar that is not the domain's own).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from whois import exceptions as whois_exceptions
from whois import parser as whois_parser

from tracking.core.registration import ParseError, RegistrationDetails, ascii_domain, clean_text

# Phrases registries use for "no such domain", each matched against one whole line (stripped)
# from its start, so a disclaimer that merely mentions "not found" cannot make a registered
# domain look free. From the registries' answers and python-whois's parsers.
_NOT_FOUND_LINES = re.compile(
    r"""^(?:%+\s*)?(?:
        no\ match\b                                       # Verisign, Nominet, .br, .jp "No match!!"
      | not\ found\b                                      # PIR, Afilias, .ca "Not found: x"
      | domain\ not\ found\b                              # .io, .org, many gTLDs
      | the\ queried\ object\ does\ not\ exist\b          # CentralNic (.xyz ...)
      | no\ data\ found\b                                 # .us, .au
      | no\ entries\ found\b                              # .fr, .ru, .cz ("%ERROR:101: no entries")
      | error:\s*\d*:?\s*no\ entries\ found\b
      | no\ matching\ (?:objects?|record)\b               # .nz, .cat, .cn
      | nothing\ found\b                                  # .at
      | no\ such\ domain\b                                # .lu
      | no\ information\ available\ about\ domain\ name\b # .pl
      | we\ do\ not\ have\ an\ entry\ in\ our\ database\b # .ch, .li
      | object\ does\ not\ exist\b
      | status:\s*(?:free|available)\s*$                  # .de, .eu, .be, .it
      | domain\ status:\s*(?:available|free)\s*$          # .ca
      | \S+\ is\ free\s*$                                 # .nl
      | .*\bis\ available\ for\ (?:registration|purchase)\b
      | \S+\ is\ not\ registered\.?\s*$
      | .*\bdoes\ not\ exist\ in\ database\b              # .bg
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def is_whois_not_found(text: str) -> bool:
    """True when a WHOIS answer says the domain is not registered."""
    return any(_NOT_FOUND_LINES.match(line.strip()) for line in text.splitlines())


# Second chance for fields python-whois's per-TLD parser missed (e.g. its .io parser only knows
# "Registry Expiry Date", old .org answers say "Created On"). Anchored at line starts.
_FALLBACK = {
    "created_at": re.compile(
        r"^\s*(?:Creation Date|Created On|Created|Registered on|Registration Date|"
        r"Domain Registration Date)\s*:\s*(\S.*?)\s*$",
        re.IGNORECASE | re.M,
    ),
    "updated_at": re.compile(
        r"^\s*(?:Updated Date|Last Updated On|Last updated|Last Modified|Changed)"
        r"\s*:\s*(\S.*?)\s*$",
        re.IGNORECASE | re.M,
    ),
    "expires_at": re.compile(
        r"^\s*(?:Registry Expiry Date|Registrar Registration Expiration Date|Expiration Date|"
        r"Expiry date|Expires On|Expires|paid-till|Expire Date)\s*:\s*(\S.*?)\s*$"
        # JPRS (co.jp, ac.jp, ...): "[State]  Connected (2026/03/31)", the date is the expiry.
        r"|^\s*\[(?:State|状態)\]\s*Connected\s*\((\d{4}/\d{2}/\d{2})\)\s*$",
        re.IGNORECASE | re.M,
    ),
    "registrant_organization": re.compile(
        r"^\s*Registrant\s*Organi[sz]ation\s*:[ \t]*(\S.*?)\s*$", re.IGNORECASE | re.M
    ),
    "registrar": re.compile(
        r"^\s*(?:Registrar|Sponsoring Registrar|Registrar Name)\s*:[ \t]*(\S.*?)\s*$",
        re.IGNORECASE | re.M,
    ),
    "dnssec": re.compile(r"^\s*DNSSEC\s*:\s*(\S.*?)\s*$", re.IGNORECASE | re.M),
}
_DNSSEC_TRUE = ("signeddelegation", "signed", "yes", "true", "active", "1")
_DNSSEC_FALSE = ("unsigned", "no", "false", "inactive", "0", "unsigned delegation")


def parse_whois_text(domain: str, text: str) -> RegistrationDetails:
    """Registration details from a WHOIS answer, with python-whois's per-TLD parsers.

    A field can come several times (contact blocks repeat "Changed:", registries print a
    registry and a registrar expiry date). The *first* value in the text is kept: the domain's
    own block comes first. Choosing, say, the earliest future expiry would make parsing depend
    on the clock; merging a registrar's answer is :func:`merge_details`' job.
    """
    text = text.replace("\r\n", "\n")  # many port-43 servers end lines with CRLF
    name = ascii_domain(domain)
    entry = _python_whois(name, text)

    def first(*keys: str) -> Any:
        for key in keys:
            value = entry.get(key)
            if isinstance(value, list):
                value = next((v for v in value if v not in (None, "")), None)
            if value not in (None, ""):
                return value
        return None

    def date(key: str, fallback: str) -> datetime | None:
        value = first(key)
        from_line = _fallback_date(text, fallback)
        if isinstance(value, datetime):
            return _zone_kept(value, from_line)
        return from_line

    own_record = _own_record(text, name)
    registrant = _fallback_text(text, "registrant_organization")
    if registrant is None:
        registrant = first("registrant_organization", "registrant_org")
    details = RegistrationDetails(
        registrar=(
            (own_record is not None and _fallback_text(own_record, "registrar"))
            or first("registrar")
            or _fallback_text(text, "registrar")
        ),
        registrant_organization=registrant,
        created_at=date("creation_date", "created_at"),
        updated_at=date("updated_date", "updated_at"),
        expires_at=date("expiration_date", "expires_at"),
        name_servers=tuple(_strings(entry.get("name_servers"))),
        statuses=tuple(_strings(entry.get("status"))),
        dnssec=_whois_dnssec(first("dnssec") or _fallback_text(text, "dnssec"), text),
        source="WHOIS",
    )
    if details.is_empty() or (
        details.expires_at is None
        and details.created_at is None
        and details.registrar is None
        and not details.name_servers
    ):
        raise ParseError("the WHOIS answer holds no registration data")
    return details


def _python_whois(domain: str, text: str) -> dict[str, Any]:
    try:
        return dict(whois_parser.WhoisEntry.load(domain, text))
    except whois_exceptions.WhoisDomainNotFoundError:
        # python-whois's own "not found" tests are loose substrings; is_whois_not_found decides.
        return {}
    except (whois_exceptions.PywhoisError, ValueError, TypeError, OverflowError):
        # An unknown date format aborts the whole parse: keep what the fallbacks find.
        return {}


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def _fallback_text(text: str, key: str) -> str | None:
    for match in _FALLBACK[key].finditer(text):
        value = clean_text(_matched(match))
        if value:
            return value
    return None


def _fallback_date(text: str, key: str) -> datetime | None:
    for match in _FALLBACK[key].finditer(text):
        try:
            value = whois_parser.cast_date(_matched(match))
        except (whois_exceptions.PywhoisError, ValueError, OverflowError):
            continue
        if isinstance(value, datetime):
            return value
    return None


def _zone_kept(parsed: datetime, from_line: datetime | None) -> datetime:
    """python-whois's reading of a date, unless its per-TLD parser dropped the zone the answer
    printed: its .cl parser cuts "CLST" off "2019-11-20 14:48:02 CLST" (UTC-3) and the time
    then passes for UTC, 3 hours early. When the answer's own line, read with its zone, gives
    the same wall-clock time at another offset, that reading is the instant."""
    if from_line is None or from_line.utcoffset() in (None, _UTC_OFFSET):
        return parsed
    dropped = parsed.utcoffset() in (None, _UTC_OFFSET)
    if dropped and parsed.replace(tzinfo=None) == from_line.replace(tzinfo=None):
        return from_line
    return parsed


_UTC_OFFSET = timedelta(0)


def _matched(match: re.Match[str]) -> str:
    """The value a fallback pattern found (the group of whichever alternative matched)."""
    return next(group for group in match.groups() if group is not None)


def _own_record(text: str, domain: str) -> str | None:
    """The lines of the record that starts with "Domain Name: <domain>", up to a blank line.

    Old thin-registry answers list look-alike names ("Server Name: MICROSOFT.COM.ZZZ.NET"),
    each with its own "Registrar:", and a registrar's answer appended after the registry's
    names one again; python-whois keeps the last value it sees. The domain's own record says
    which registrar is its own.
    """
    match = re.search(
        rf"^[ \t]*Domain Name:[ \t]*{re.escape(domain)}\.?[ \t]*$(.*?)(?:^[ \t]*$|\Z)",
        text,
        re.IGNORECASE | re.M | re.S,
    )
    return match.group(1) if match else None


def _whois_dnssec(value: object, text: str) -> bool | None:
    if value is not None:
        word = str(value).strip().lower()
        if word.startswith(_DNSSEC_FALSE):
            return False
        if word.startswith(_DNSSEC_TRUE):
            return True
    if re.search(r"^\s*Dnskey\s*:", text, re.IGNORECASE | re.M):  # DENIC lists the keys
        return True
    return None


__all__ = ["is_whois_not_found", "parse_whois_text"]
