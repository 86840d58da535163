"""The domain side of an update: registration (RDAP, else WHOIS) and DNS records, then a plan
of what to store; also registration details a person enters (source MANUAL).

A well-formed domain is always saved; what could not be looked up is recorded as a failure,
never as emptiness: good details are never overwritten by a failed look-up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from models.tables import DOMAIN_DETAILS
from tracking.core import clock
from tracking.core.changes import Change, describe_changes
from tracking.core.errors import DstrackError, ErrorCode
from tracking.core.registration import RegistrationDetails, registration_changes
from tracking.core.schedule import Outcome
from tracking.core.sources import HostSource, unicode_name
from tracking.probes.dns import DnsLookup
from tracking.probes.registration import (
    LookupFailure,
    RegistrationFailed,
    RegistrationFound,
    RegistrationNotRegistered,
    RegistrationOutcome,
)
from tracking.refresh.certificate import CertificateSnapshot, retrieve_certificate
from tracking.refresh.events import RawContent
from tracking.refresh.services import Services
from tracking.refresh.state import Row
from tracking.refresh.writes import DetailsWrite, Plan

log = logging.getLogger(__name__)

MAX_LISTED_RECORD_CHANGES = 6


@dataclass(frozen=True)
class DomainSnapshot:
    domain: str  # the registrable domain, A-labels
    registration: RegistrationOutcome
    dns: DnsLookup
    retrieved_at: datetime

    def raw(self) -> RawContent:
        """The registry answers (RDAP JSON / WHOIS text) as received, plus the DNS records."""
        registration = self.registration
        document = {
            "domain": self.domain,
            "retrieved_at": self.retrieved_at.isoformat(),
            "registration": {
                "result": registration.result,
                "source": getattr(registration, "source", None),
                "failures": [asdict(f) for f in getattr(registration, "failures", ())]
                + [asdict(f) for f in getattr(registration, "notes", ())],
                "answers": [asdict(a) for a in registration.answers],
            },
            "dns": {
                "records": [asdict(r) for r in self.dns.records],
                "failures": [{"name": n, "type": t, "kind": k} for n, t, k in self.dns.failures],
                "nxdomain": self.dns.nxdomain,
            },
        }
        stamp = self.retrieved_at.strftime("%Y%m%dT%H%M%SZ")
        content = json.dumps(document, indent=2, ensure_ascii=False).encode()
        return RawContent(f"domain-{self.domain}-{stamp}.json", "application/json", content)


async def retrieve_domain(services: Services, domain: str) -> DomainSnapshot:
    """Registration and DNS, concurrently. Never raises for a failed look-up."""
    registration, records = await asyncio.gather(
        services.registration.lookup(domain),
        services.dns.lookup(domain),
        return_exceptions=True,
    )
    if isinstance(registration, BaseException):
        if not isinstance(registration, Exception):
            raise registration
        log.exception("registration look-up of %s crashed", domain, exc_info=registration)
        registration = RegistrationFailed(
            (LookupFailure("RDAP/WHOIS", "error", f"unexpected error: {registration}"),)
        )
    if isinstance(records, BaseException):
        if not isinstance(records, Exception):
            raise records
        log.exception("DNS look-up of %s crashed", domain, exc_info=records)
        records = DnsLookup(records=(), failures=((f"{domain}.", "*", "error"),), nxdomain=False)
    return DomainSnapshot(domain, registration, records, clock.now())


async def find_domain_certificate(
    services: Services, domain: str
) -> tuple[HostSource, CertificateSnapshot] | str:
    """The certificate served for the domain: port 443 of the domain, then of ``www.``.

    A certificate that covers its host name wins; if neither does (a hosting provider's
    default certificate, say), the first one served. Returns the source and snapshot, or why
    none was found.
    """
    reasons = []
    found: tuple[HostSource, CertificateSnapshot] | None = None
    for host in (domain, f"www.{domain}"):
        source = HostSource(host=host, port=services.settings.domain_tls_port)
        try:
            snap = await retrieve_certificate(services, source)
        except DstrackError as error:
            reasons.append(f"{source.display}: {getattr(error, 'detail', None) or error.message}")
            continue
        if snap.hostname_matches:
            return source, snap
        found = found or (source, snap)
    return found or "; ".join(reasons)


# --- planning --------------------------------------------------------------------------------

# A domain's details before anything is known (the columns of ``domain_details`` but its key).
_NOTHING_KNOWN: dict[str, object] = {
    "registrar": None,
    "registrant_organization": None,
    "created_at": None,
    "updated_at": None,
    "expires_at": None,
    "name_servers": [],
    "statuses": [],
    "dnssec": None,
    "source": "RDAP",
    "dns_records": [],
    "registered": None,
    "registration_error": None,
    "dns_error": None,
    "retrieved_at": None,
}


def _known(old: Row | None, *, source: str = "RDAP") -> dict[str, object]:
    if old is None:
        return {**_NOTHING_KNOWN, "source": source}
    values = dict(old._mapping)
    del values["device_id"]
    return values


def _registration(values: dict[str, object]) -> RegistrationDetails | None:
    """The registration details a record holds, if it holds any."""
    if values["registered"] is not True and values["source"] != "MANUAL":
        return None
    return RegistrationDetails(
        **{name: values[name] for name in _REGISTRATION_FIELDS},  # type: ignore[arg-type]
    )


_REGISTRATION_FIELDS = (
    "registrar",
    "registrant_organization",
    "created_at",
    "updated_at",
    "expires_at",
    "name_servers",
    "statuses",
    "dnssec",
    "source",
)


def _registration_values(details: RegistrationDetails) -> dict[str, object]:
    values = {name: getattr(details, name) for name in _REGISTRATION_FIELDS}
    values["name_servers"] = list(details.name_servers)
    values["statuses"] = list(details.statuses)
    return values


def _record_key(record: dict[str, object]) -> tuple[object, ...]:
    # TTLs count down in caching resolvers: a changed TTL alone is not a change of the domain.
    return (record["name"], record["type"], record["value"])


def _records_change(old: list[dict[str, object]], new: list[dict[str, object]]) -> Change | None:
    before = {_record_key(r) for r in old}
    after = {_record_key(r) for r in new}
    if before == after:
        return None
    added = sorted(after - before, key=str)
    removed = sorted(before - after, key=str)
    parts = [f"+{' '.join(map(str, r))}" for r in added] + [
        f"-{' '.join(map(str, r))}" for r in removed
    ]
    shown = ", ".join(parts[:MAX_LISTED_RECORD_CHANGES])
    if len(parts) > MAX_LISTED_RECORD_CHANGES:
        shown += f", and {len(parts) - MAX_LISTED_RECORD_CHANGES} more"
    return Change(
        "dns_records", "DNS Records", f"{len(before)} record(s)", f"{len(after)} record(s): {shown}"
    )


def _dns_failure_text(lookup: DnsLookup) -> str:
    """E.g. "DNS look-up failed (servfail: example.com. MX/CAA; timeout: www.example.com. A)"."""
    by_kind: dict[str, dict[str, list[str]]] = {}
    for name, rtype, kind in lookup.failures:
        by_kind.setdefault(kind, {}).setdefault(name, []).append(rtype)
    listed = "; ".join(
        f"{kind}: " + ", ".join(f"{name} {'/'.join(types)}" for name, types in names.items())
        for kind, names in by_kind.items()
    )
    return f"DNS look-up failed ({listed})"


@dataclass
class _Draft:
    """A domain plan being assembled."""

    first: bool
    values: dict[str, object]
    changes: list[Change]
    notes: list[str]
    device_values: dict[str, object]
    error: DstrackError | None = None


def plan_domain(old: Row | None, snap: DomainSnapshot) -> Plan:
    """What a domain look-up learned, and what of it is stored: a failed look-up never
    overwrites good details."""
    draft = _Draft(old is None, _known(old), [], [], {})
    _plan_registration(draft, snap)
    _plan_records(draft, snap.dns, unicode_name(snap.domain))
    draft.values["retrieved_at"] = snap.retrieved_at
    draft.device_values["last_update_error"] = draft.error.message if draft.error else None
    shown = unicode_name(snap.domain)
    if draft.first:
        headline = f"Domain details looked up for {shown}"
    elif draft.changes:
        headline = f"Domain details updated for {shown}: {describe_changes(draft.changes)}"
    else:
        headline = f"Domain details checked for {shown}: no changes"
    if isinstance(snap.registration, RegistrationFailed):
        outcome = Outcome.FAILED
    elif snap.dns.failed:
        outcome = Outcome.DNS_FAILED
    else:
        outcome = Outcome.OK
    return Plan(
        first=draft.first,
        changes=tuple(draft.changes),
        note=" ".join([headline + ".", *draft.notes]),
        raw=snap.raw() if draft.first or draft.changes else None,
        details=DetailsWrite(DOMAIN_DETAILS, draft.values),
        device_values=draft.device_values,
        outcome=outcome,
        error=draft.error,
    )


def _plan_registration(draft: _Draft, snap: DomainSnapshot) -> None:
    registration = snap.registration
    values = draft.values
    if isinstance(registration, RegistrationFound):
        details = registration.details
        if not draft.first:
            draft.changes += registration_changes(_registration(values), details)
        values.update(_registration_values(details), registered=True, registration_error=None)
        draft.device_values["expires_at"] = details.expires_at
        draft.notes.append(
            f"Registration details from {registration.source}: "
            f"registrar {details.registrar or '(not published)'}, "
            f"expires {details.expires_at.isoformat() if details.expires_at else '(unknown)'}."
        )
    elif isinstance(registration, RegistrationNotRegistered):
        if values["registered"] is not False and not draft.first:
            draft.changes.append(Change("registered", "Registered", "yes", "no"))
        values.update(registered=False, registration_error=None, source=registration.source)
        draft.notes.append(
            f"The registry ({registration.source}) has no record of "
            f"{unicode_name(snap.domain)}: the domain is not registered, so no registration "
            "details were retrieved."
        )
    else:
        values["registration_error"] = registration.message
        draft.error = DstrackError(
            registration.code, f"Registration look-up failed: {registration.message}"
        )
        message = draft.error.message.rstrip(".")
        draft.notes.append(message + ("." if draft.first else ". Previous details kept."))


def _plan_records(draft: _Draft, lookup: DnsLookup, shown: str) -> None:
    values = draft.values
    new_records = [asdict(r) for r in lookup.records]
    if lookup.failed:
        values["dns_error"] = failure = _dns_failure_text(lookup)
        draft.notes.append(failure + ("; previous records kept." if not draft.first else "."))
        if draft.first:  # nothing known yet: keep what did answer
            values["dns_records"] = new_records
        if draft.error is None:
            draft.error = DstrackError(ErrorCode.DNS_LOOKUP_FAILED, failure)
        return
    old_records = values["dns_records"]
    assert isinstance(old_records, list)
    if not draft.first and (change := _records_change(old_records, new_records)):
        draft.changes.append(change)
    values.update(dns_records=new_records, dns_error=None)
    if lookup.nxdomain:
        draft.notes.append(f"DNS: {shown} does not exist (NXDOMAIN).")


def plan_manual_registration(
    old: Row | None, *, expires_at: datetime | None, registrar: str | None
) -> Plan:
    """Registration details a person entered (source MANUAL); the schedule follows the expiry."""
    values = _known(old, source="MANUAL")
    before = _registration(values)
    device_values: dict[str, object] = {}
    if expires_at is not None:
        values["expires_at"] = device_values["expires_at"] = expires_at
    if registrar is not None:
        values["registrar"] = registrar
    values["source"] = "MANUAL"
    changes = registration_changes(before, _registration(values))  # type: ignore[arg-type]
    note = f"Registration details entered manually: {describe_changes(changes)}."
    return Plan(
        first=False,
        changes=tuple(changes),
        note=note if changes else None,
        raw=None,
        details=DetailsWrite(DOMAIN_DETAILS, values),
        device_values=device_values,
        outcome=Outcome.OK,
    )
