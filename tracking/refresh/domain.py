"""The domain side of an audit: registration (RDAP, else WHOIS) and DNS records.

A well-formed domain is always saved; what could not be looked up is recorded as a failure,
never as emptiness: good details are never overwritten by a failed look-up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlmodel import Session

from models import Device, DomainDetailsRecord
from tracking.core import clock
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
from tracking.refresh.rawstore import RawStore
from tracking.refresh.records import (
    AuditResult,
    Change,
    RawContent,
    add_note,
    describe_changes,
    reschedule,
    store_raw,
)
from tracking.refresh.services import Services

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


# --- storing ---------------------------------------------------------------------------------


def _details_of(record: DomainDetailsRecord) -> RegistrationDetails | None:
    if record.registered is not True and record.source != "MANUAL":
        return None
    return RegistrationDetails(
        registrar=record.registrar,
        registrant_organization=record.registrant_organization,
        created_at=record.created_at,
        updated_at=record.updated_at,
        expires_at=record.expires_at,
        name_servers=tuple(record.name_servers),
        statuses=tuple(record.statuses),
        dnssec=record.dnssec,
        source=record.source,
    )


def _fill_registration(record: DomainDetailsRecord, details: RegistrationDetails) -> None:
    record.registrar = details.registrar
    record.registrant_organization = details.registrant_organization
    record.created_at = details.created_at
    record.updated_at = details.updated_at
    record.expires_at = details.expires_at
    record.name_servers = list(details.name_servers)
    record.statuses = list(details.statuses)
    record.dnssec = details.dnssec
    record.source = details.source


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
    return ("DNS Records", f"{len(before)} record(s)", f"{len(after)} record(s): {shown}")


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


def apply_domain(
    session: Session,
    device: Device,
    snap: DomainSnapshot,
    *,
    raw_store: RawStore,
    author: str,
    now: datetime,
) -> AuditResult:
    """Store what a domain look-up learned, in the caller's transaction."""
    assert device.id is not None
    old = session.get(DomainDetailsRecord, device.id)
    first = old is None
    record = old or DomainDetailsRecord(device_id=device.id, source="RDAP")
    changes: list[Change] = []
    notes: list[str] = []
    error: DstrackError | None = None
    registration = snap.registration
    shown = unicode_name(snap.domain)

    if isinstance(registration, RegistrationFound):
        details = registration.details
        if not first:
            changes += registration_changes(_details_of(record), details)
        _fill_registration(record, details)
        record.registered = True
        record.registration_error = None
        device.expires_at = details.expires_at
        notes.append(
            f"Registration details from {registration.source}: "
            f"registrar {details.registrar or '(not published)'}, "
            f"expires {details.expires_at.isoformat() if details.expires_at else '(unknown)'}."
        )
    elif isinstance(registration, RegistrationNotRegistered):
        if record.registered is not False and not first:
            changes.append(("Registered", "yes", "no"))
        record.registered = False
        record.registration_error = None
        record.source = registration.source
        notes.append(
            f"The registry ({registration.source}) has no record of {shown}: "
            "the domain is not registered, so no registration details were retrieved."
        )
    else:
        record.registration_error = registration.message
        error = DstrackError(
            registration.code, f"Registration look-up failed: {registration.message}"
        )
        notes.append(error.message.rstrip(".") + ("." if first else ". Previous details kept."))

    new_records = [asdict(r) for r in snap.dns.records]
    if snap.dns.failed:
        record.dns_error = _dns_failure_text(snap.dns)
        notes.append(record.dns_error + ("; previous records kept." if not first else "."))
        if first:  # nothing known yet: keep what did answer
            record.dns_records = new_records
        if error is None:
            error = DstrackError(ErrorCode.DNS_LOOKUP_FAILED, record.dns_error)
    else:
        if not first and (records_change := _records_change(record.dns_records, new_records)):
            changes.append(records_change)
        record.dns_records = new_records
        record.dns_error = None
        if snap.dns.nxdomain:
            notes.append(f"DNS: {shown} does not exist (NXDOMAIN).")
    record.retrieved_at = snap.retrieved_at
    session.add(record)

    device.last_updated_at = now
    device.last_update_error = error.message if error else None
    session.add(device)

    result = AuditResult(
        device_id=device.id, first=first, changes=changes, error=error, is_domain=True
    )
    result.changed = first or bool(changes)
    if result.changed:
        result.raw_file = store_raw(session, device, snap.raw(), raw_store=raw_store, now=now)
    if first:
        headline = f"Domain details looked up for {shown}"
    elif changes:
        headline = f"Domain details updated for {shown}: {describe_changes(changes)}"
    else:
        headline = f"Domain details checked for {shown}: no changes"
    result.note = " ".join([headline + ".", *notes])
    add_note(session, device, result.note, author=author, now=now)

    if isinstance(registration, RegistrationFailed):
        outcome = Outcome.FAILED
    elif snap.dns.failed:
        outcome = Outcome.DNS_FAILED
    else:
        outcome = Outcome.OK
    result.next_update = reschedule(session, device, outcome=outcome, now=now)
    return result


def apply_manual_registration(
    session: Session,
    device: Device,
    *,
    expires_at: datetime | None,
    registrar: str | None,
    author: str,
    now: datetime,
) -> list[Change]:
    """Registration details a person entered (source MANUAL); the schedule follows the expiry."""
    assert device.id is not None
    record = session.get(DomainDetailsRecord, device.id) or DomainDetailsRecord(
        device_id=device.id, source="MANUAL"
    )
    before = _details_of(record)
    if expires_at is not None:
        record.expires_at = expires_at
        device.expires_at = expires_at
    if registrar is not None:
        record.registrar = registrar
    record.source = "MANUAL"
    after = _details_of(record)
    assert after is not None
    changes = registration_changes(before, after)
    session.add(record)
    session.add(device)
    if changes:
        add_note(
            session,
            device,
            f"Registration details entered manually: {describe_changes(changes)}.",
            author=author,
            now=now,
        )
    reschedule(session, device, outcome=Outcome.OK, now=now)
    return changes
