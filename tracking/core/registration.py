"""Domain registration details: the value object, its RDAP parser and its changes. No I/O.

WHOIS answers are read by :mod:`tracking.core.whois_text`, into the same value object.

Both sources end up in one shape so that a domain whose look-up moves from RDAP to WHOIS (or
back) does not show spurious changes: statuses use the RDAP names of RFC 8056 (a WHOIS
``clientTransferProhibited`` becomes ``client transfer prohibited``, ``ok`` becomes ``active``),
name servers are lower-case without the trailing dot, and every date is timezone-aware UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

import idna

from tracking.core.changes import Change
from tracking.core.errors import ErrorCode, ProbeError

SOURCES = ("RDAP", "WHOIS", "MANUAL")


class ParseError(ValueError):
    """A registry answer holds no usable registration data."""


class LookupFailureKind:
    """Why a registry look-up failed (``RegistryLookupError.kind``); plain strings for logs."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    HTTP_STATUS = "http_status"
    RATE_LIMITED = "rate_limited"
    INVALID_ANSWER = "invalid_answer"
    TOO_LARGE = "too_large"
    EMPTY_ANSWER = "empty_answer"
    NO_SERVER = "no_server"
    PRIVATE_ADDRESS = "private_address"
    # Not a failure on its own: RDAP has no record (404), noted beside what WHOIS said.
    NOT_FOUND = "not_found"


class RegistryLookupError(ProbeError):
    """An RDAP or WHOIS look-up got no answer to rely on (never means "not registered")."""

    def __init__(self, source: str, kind: str, message: str):
        code = (
            ErrorCode.PRIVATE_ADDRESS_REFUSED
            if kind == LookupFailureKind.PRIVATE_ADDRESS
            else ErrorCode.LOOKUP_FAILED
        )
        super().__init__(code, message)
        self.source = source
        self.kind = kind


@dataclass(frozen=True)
class RegistrationDetails:
    registrar: str | None = None
    registrant_organization: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    name_servers: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    dnssec: bool | None = None
    source: str = "MANUAL"

    def __post_init__(self) -> None:
        # Normalize whatever the caller passed, so equal details compare equal.
        set_ = object.__setattr__
        set_(self, "registrar", clean_text(self.registrar))
        set_(self, "registrant_organization", clean_text(self.registrant_organization))
        for name in ("created_at", "updated_at", "expires_at"):
            set_(self, name, _as_utc(getattr(self, name)))
        set_(self, "name_servers", normalize_name_servers(self.name_servers))
        set_(self, "statuses", normalize_statuses(self.statuses))
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}")

    def is_empty(self) -> bool:
        """True when no field but ``source`` carries information."""
        return all(getattr(self, f.name) in (None, ()) for f in fields(self) if f.name != "source")


def merge_details(primary: RegistrationDetails, extra: RegistrationDetails) -> RegistrationDetails:
    """Fill the gaps of ``primary`` (the registry's answer) from ``extra`` (the registrar's).

    The registry stays authoritative for every field it has: registrars often show their own
    (different) expiry date.
    """
    gaps: dict[str, Any] = {}
    for f in fields(primary):
        if f.name != "source" and getattr(primary, f.name) in (None, ()):
            gaps[f.name] = getattr(extra, f.name)
    return replace(primary, **gaps)


def ascii_domain(domain: str) -> str:
    """The A-label form of a domain name, lower-case, without the trailing dot."""
    name = domain.strip().rstrip(".").lower()
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError:
        return name


# --- normalization --------------------------------------------------------------------------

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}$"
)
_REDACTED = re.compile(
    r"redacted|not disclosed|data protected|withheld|non-public data|gdpr masked", re.IGNORECASE
)
_NO_VALUE = re.compile(
    r"^(no registrar listed|no registration status listed|n/a|none|not available)\b", re.IGNORECASE
)

# RFC 8056 section 2: EPP status codes and their RDAP names.
_EPP_TO_RDAP = {
    "addperiod": "add period",
    "autorenewperiod": "auto renew period",
    "clientdeleteprohibited": "client delete prohibited",
    "clienthold": "client hold",
    "clientrenewprohibited": "client renew prohibited",
    "clienttransferprohibited": "client transfer prohibited",
    "clientupdateprohibited": "client update prohibited",
    "inactive": "inactive",
    "ok": "active",
    "pendingcreate": "pending create",
    "pendingdelete": "pending delete",
    "pendingrenew": "pending renew",
    "pendingrestore": "pending restore",
    "pendingtransfer": "pending transfer",
    "pendingupdate": "pending update",
    "redemptionperiod": "redemption period",
    "renewperiod": "renew period",
    "serverdeleteprohibited": "server delete prohibited",
    "serverhold": "server hold",
    "serverrenewprohibited": "server renew prohibited",
    "servertransferprohibited": "server transfer prohibited",
    "serverupdateprohibited": "server update prohibited",
    "transferperiod": "transfer period",
}
_RDAP_NAMES = frozenset(_EPP_TO_RDAP.values())
_STATUS_URL = re.compile(r"\(?\s*https?://\S*\s*\)?")


def clean_text(value: object) -> str | None:
    """A registry's text with its whitespace folded, or None when blank, redacted or "n/a"."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    if not text or _REDACTED.search(text) or _NO_VALUE.match(text):
        return None
    return text


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # registries that print no offset mean UTC
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def normalize_name_servers(values: Iterable[str]) -> tuple[str, ...]:
    """Host names only (a WHOIS line may add addresses), lower-case, no trailing dot, sorted."""
    names = set()
    for value in values:
        for line in str(value).splitlines():
            words = line.split()
            if not words:
                continue
            name = words[0].rstrip(".").lower()
            if _HOSTNAME.match(name):
                names.add(name)
    return tuple(sorted(names))


def normalize_status(value: str) -> str:
    """One status: the RDAP name of an EPP code, else the registry's words, trimmed."""
    text = " ".join(_STATUS_URL.sub(" ", value).split())
    lower = text.lower()
    return _EPP_TO_RDAP.get(lower, lower if lower in _RDAP_NAMES else text)


def normalize_statuses(values: Iterable[str]) -> tuple[str, ...]:
    return _unique(normalize_status(str(v)) for v in values if clean_text(v))


# --- RDAP (RFC 9083) ---------------------------------------------------------------------------


def parse_rdap_domain(data: Mapping[str, Any]) -> RegistrationDetails:
    """Registration details from an RDAP domain object (RFC 9083 section 5.3)."""
    if not isinstance(data, Mapping):
        raise ParseError("the RDAP answer is not a JSON object")
    object_class = data.get("objectClassName")
    if object_class is not None and object_class != "domain":
        raise ParseError(f"the RDAP answer is a {object_class!r} object, not a domain")
    events = _rdap_events(data.get("events"))
    details = RegistrationDetails(
        registrar=_rdap_registrar(data),
        registrant_organization=_rdap_registrant(data),
        created_at=events.get("registration"),
        # "last update" is MarkMonitor's non-standard spelling of "last changed".
        updated_at=events.get("last changed") or events.get("last update"),
        expires_at=events.get("expiration"),
        name_servers=tuple(
            str(ns.get("ldhName") or ns.get("unicodeName") or "")
            for ns in _list(data.get("nameservers"))
            if isinstance(ns, Mapping)
        ),
        statuses=tuple(str(s) for s in _list(data.get("status"))),
        dnssec=_rdap_dnssec(data.get("secureDNS")),
        source="RDAP",
    )
    if details.is_empty():
        raise ParseError("the RDAP answer holds no registration data")
    return details


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _rdap_events(events: object) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for event in _list(events):
        if not isinstance(event, Mapping):
            continue
        action = str(event.get("eventAction", "")).strip().lower()
        try:
            when = datetime.fromisoformat(str(event.get("eventDate", "")))
        except ValueError:
            continue
        found.setdefault(action, _as_utc(when) or when)  # the first of each action wins
    return found


def _entities_with_role(data: Mapping[str, Any], role: str) -> list[Mapping[str, Any]]:
    return [
        e
        for e in _list(data.get("entities"))
        if isinstance(e, Mapping) and role in _list(e.get("roles"))
    ]


def _vcard_values(entity: Mapping[str, Any], prop: str) -> list[str]:
    """The text values of one jCard (RFC 7095) property, e.g. ``fn`` or ``org``."""
    card = _list(entity.get("vcardArray"))
    values = []
    for item in _list(card[1]) if len(card) == 2 else []:
        if isinstance(item, list) and len(item) >= 4 and str(item[0]).lower() == prop:
            value = item[3]
            if isinstance(value, list):  # structured org: organization name first
                value = next((v for v in value if isinstance(v, str) and v.strip()), "")
            if isinstance(value, str) and value.strip():
                values.append(value.strip())
    return values


def _rdap_registrar(data: Mapping[str, Any]) -> str | None:
    for entity in _entities_with_role(data, "registrar"):
        for value in (*_vcard_values(entity, "fn"), *_vcard_values(entity, "org")):
            if clean_text(value):
                return value
        # .cz publishes only the registrar's handle; it still names the registrar.
        if isinstance(entity.get("handle"), str) and entity["handle"].strip():
            return str(entity["handle"]).strip()
    return None


def _rdap_registrant(data: Mapping[str, Any]) -> str | None:
    for entity in _entities_with_role(data, "registrant"):
        for value in (*_vcard_values(entity, "org"), *_vcard_values(entity, "fn")):
            if clean_text(value):
                return value
    return None


def _rdap_dnssec(secure_dns: object) -> bool | None:
    if not isinstance(secure_dns, Mapping):
        return None
    signed = secure_dns.get("delegationSigned")
    if isinstance(signed, bool):
        return signed
    if _list(secure_dns.get("dsData")) or _list(secure_dns.get("keyData")):
        return True
    return None


# --- changes ----------------------------------------------------------------------------------

_LABELS = (
    ("registrar", "Registrar"),
    ("registrant_organization", "Registrant organization"),
    ("created_at", "Created"),
    ("updated_at", "Updated"),
    ("expires_at", "Expires"),
    ("name_servers", "Name servers"),
    ("statuses", "Statuses"),
    ("dnssec", "DNSSEC"),
)


def registration_changes(old: RegistrationDetails | None, new: RegistrationDetails) -> list[Change]:
    """Every field that differs, in display order.

    ``source`` is left out on purpose: RDAP and WHOIS describing the same registration is not
    a change of the domain. With no previous details every filled field of ``new`` is listed.
    """
    changes = []
    for name, label in _LABELS:
        before = _display(getattr(old, name)) if old is not None else None
        after = _display(getattr(new, name))
        if before != after:
            changes.append(Change(name, label, before, after))
    return changes


def _display(value: object) -> str | None:
    if value is None or value == ():
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "signed" if value else "unsigned"
    if isinstance(value, tuple):
        return ", ".join(value)
    return str(value)


__all__ = [
    "LookupFailureKind",
    "ParseError",
    "RegistrationDetails",
    "RegistryLookupError",
    "ascii_domain",
    "clean_text",
    "merge_details",
    "normalize_name_servers",
    "normalize_statuses",
    "parse_rdap_domain",
    "registration_changes",
]
