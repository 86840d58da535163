"""The domain audit with fake probes: what is stored, noted, kept and scheduled after a look-up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from models import (
    ActivityNote,
    Device,
    DeviceCategory,
    DomainDetailsRecord,
    Organization,
    OrganizationType,
    Product,
    RawFile,
    UpdateJob,
)
from models.db import reader, transaction
from tracking.core import clock
from tracking.core.changes import Change
from tracking.core.errors import ErrorCode
from tracking.core.registration import RegistrationDetails
from tracking.core.settings import Settings
from tracking.probes.dns import DnsLookup, DnsRecord, FailureKind
from tracking.probes.registration import (
    RDAP_CONTENT_TYPE,
    WHOIS_CONTENT_TYPE,
    LookupFailure,
    RawAnswer,
    RegistrationFailed,
    RegistrationFound,
    RegistrationNotRegistered,
    RegistrationOutcome,
)
from tracking.refresh.domain import DomainSnapshot, retrieve_domain
from tracking.refresh.pipeline import (
    AuditResult,
    ManualRegistration,
    Retrieved,
    apply_updates,
    update_audit,
)
from tracking.refresh.services import Services
from tracking.wiring import build_services

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
DOMAIN = "example.com"
AUTHOR = "System"
EXPIRES = NOW + timedelta(days=400)

DETAILS = RegistrationDetails(
    registrar="Registrar A",
    registrant_organization="Example Inc.",
    created_at=datetime(2001, 2, 3, tzinfo=UTC),
    updated_at=datetime(2029, 6, 1, tzinfo=UTC),
    expires_at=EXPIRES,
    name_servers=("ns1.example.com", "ns2.example.com"),
    statuses=("client transfer prohibited",),
    dnssec=False,
    source="RDAP",
)
RDAP_ANSWER = RawAnswer(
    "https://rdap.example/domain/example.com", RDAP_CONTENT_TYPE, '{"ldhName": "example.com"}'
)
WHOIS_ANSWER = RawAnswer("whois.example:43", WHOIS_CONTENT_TYPE, "Domain Name: EXAMPLE.COM\n")
RECORDS = (
    DnsRecord("example.com.", "A", 300, "192.0.2.1"),
    DnsRecord("example.com.", "MX", 3600, "10 mail.example.com."),
    DnsRecord("www.example.com.", "CNAME", 300, "example.com."),
)


def found(details: RegistrationDetails = DETAILS, source: str = "RDAP") -> RegistrationFound:
    answer = RDAP_ANSWER if source == "RDAP" else WHOIS_ANSWER
    return RegistrationFound(replace(details, source=source), source, (answer,))


def failed(message: str = "HTTP 500 Internal Server Error") -> RegistrationFailed:
    return RegistrationFailed(
        (
            LookupFailure("RDAP", "http_status", message),
            LookupFailure("WHOIS", "empty_answer", "empty answer from whois.example:43"),
        )
    )


def dns(*records: DnsRecord, failures: tuple[tuple[str, str, FailureKind], ...] = ()) -> DnsLookup:
    return DnsLookup(records=records, failures=failures, nxdomain=False)


OK_DNS = dns(*RECORDS)


# --- fake probes ---------------------------------------------------------------------------------


@dataclass
class FakeRegistration:
    outcome: RegistrationOutcome | Exception
    asked: list[str] = field(default_factory=list)

    async def lookup(self, domain: str) -> RegistrationOutcome:
        self.asked.append(domain)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@dataclass
class FakeDns:
    outcome: DnsLookup | Exception
    asked: list[str] = field(default_factory=list)

    async def lookup(self, domain: str) -> DnsLookup:
        self.asked.append(domain)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with clock.use_clock(lambda: NOW):
        yield


@pytest.fixture
def services(tmp_path: Path, engine: Engine) -> Services:
    settings = Settings(database_url=str(engine.url), data_dir=tmp_path / "data")
    return build_services(settings, engine)


@pytest.fixture
def device_id(engine: Engine) -> int:
    with transaction(engine) as session:
        org = Organization(name="Acme", type=OrganizationType.CUSTOMER, created_at=NOW)
        product = Product(name="None", is_system=True, created_at=NOW)
        session.add(org)
        session.add(product)
        session.flush()
        assert org.id is not None and product.id is not None
        device = Device(
            category=DeviceCategory.DOMAIN,
            name=DOMAIN,
            organization_id=org.id,
            product_id=product.id,
            domain=DOMAIN,
            created_at=NOW,
            modified_at=NOW,
        )
        session.add(device)
        session.flush()
        assert device.id is not None
        return device.id


def with_probes(
    services: Services,
    registration: RegistrationOutcome | Exception,
    records: DnsLookup | Exception,
) -> Services:
    return replace(services, registration=FakeRegistration(registration), dns=FakeDns(records))


async def audit(
    services: Services,
    device_id: int,
    registration: RegistrationOutcome,
    records: DnsLookup = OK_DNS,
    *,
    at: datetime = NOW,
) -> AuditResult:
    """One look-up with the given answers, stored at ``at``."""
    with clock.use_clock(lambda: at):
        snap = await retrieve_domain(with_probes(services, registration, records), DOMAIN)
    return save(services, Retrieved(device_id, "Domain", domain=snap), at=at)


def save(
    services: Services, item: Retrieved, *, at: datetime = NOW, author: str = AUTHOR
) -> AuditResult:
    """Through the pipeline, in one transaction."""
    with transaction(services.engine) as session:
        return apply_updates(session, services, [item], author=AUTHOR, now=at)[0]


@dataclass
class Stored:
    device: Device
    details: DomainDetailsRecord | None
    notes: list[str]  # oldest first
    raw_files: list[RawFile]  # oldest first
    job: UpdateJob | None


def stored(engine: Engine, device_id: int) -> Stored:
    with reader(engine) as session:
        device = session.get(Device, device_id)
        assert device is not None
        notes = session.exec(
            select(ActivityNote)
            .where(ActivityNote.device_id == device_id)
            .order_by(col(ActivityNote.id))
        ).all()
        raws = session.exec(
            select(RawFile).where(RawFile.device_id == device_id).order_by(col(RawFile.id))
        ).all()
        return Stored(
            device=device,
            details=session.get(DomainDetailsRecord, device_id),
            notes=[n.text for n in notes],
            raw_files=list(raws),
            job=session.get(UpdateJob, device_id),
        )


def raw_document(services: Services, raw: RawFile) -> dict[str, object]:
    document: dict[str, object] = json.loads(services.raw_store.get(raw.sha256))
    return document


# --- retrieve_domain -------------------------------------------------------------------------


async def test_retrieve_asks_both_probes_for_the_domain(services: Services) -> None:
    registration, records = FakeRegistration(found()), FakeDns(OK_DNS)
    probed = replace(services, registration=registration, dns=records)

    snap = await retrieve_domain(probed, DOMAIN)

    assert registration.asked == [DOMAIN] and records.asked == [DOMAIN]
    assert snap == DomainSnapshot(DOMAIN, found(), OK_DNS, NOW)


async def test_a_crashing_probe_is_a_failed_look_up_not_a_crash(services: Services) -> None:
    probed = with_probes(services, RuntimeError("boom"), ValueError("bad"))
    snap = await retrieve_domain(probed, DOMAIN)

    assert isinstance(snap.registration, RegistrationFailed)
    assert "unexpected error: boom" in snap.registration.message
    assert snap.dns.failed
    assert snap.dns.records == ()
    assert snap.dns.failures == (("example.com.", "*", "error"),)


async def test_a_crashing_probe_through_update_audit_is_recorded(
    services: Services, device_id: int
) -> None:
    result = await update_audit(
        with_probes(services, RuntimeError("boom"), OK_DNS), device_id, author=AUTHOR
    )
    assert result.error is not None
    assert result.error.code == ErrorCode.LOOKUP_FAILED
    after = stored(services.engine, device_id)
    assert after.device.last_update_error == result.error.message
    assert after.job is not None and after.job.interval_seconds == 3600


# --- the first retrieval -------------------------------------------------------------------------


async def test_first_retrieval_stores_everything_with_a_raw_file_and_a_note(
    services: Services, device_id: int
) -> None:
    result = await audit(services, device_id, found())

    assert result.first and result.changed and result.ok and result.is_domain
    assert result.changes == []  # the first look-up lists no changes, it looks up
    after = stored(services.engine, device_id)
    details = after.details
    assert details is not None
    assert (details.registrar, details.expires_at, details.source) == (
        "Registrar A",
        DETAILS.expires_at,
        "RDAP",
    )
    assert details.registered is True
    assert details.dns_records == [
        {"name": r.name, "type": r.type, "ttl": r.ttl, "value": r.value} for r in RECORDS
    ]
    assert details.retrieved_at == NOW
    assert after.device.expires_at == DETAILS.expires_at
    assert (after.device.last_updated_at, after.device.last_update_error) == (NOW, None)

    [note] = after.notes
    assert note == result.note
    assert note.startswith("Domain details looked up for example.com. Registration details from")
    assert "Registrar A" in note

    [raw] = after.raw_files
    assert result.raw_file is not None and result.raw_file.id == raw.id
    assert raw.file_name == "domain-example.com-20300101T120000Z.json"
    assert raw.content_type == "application/json"
    document = raw_document(services, raw)
    assert document["domain"] == DOMAIN
    assert document["registration"] == {
        "result": "found",
        "source": "RDAP",
        "failures": [],
        "answers": [
            {
                "origin": RDAP_ANSWER.origin,
                "content_type": RDAP_CONTENT_TYPE,
                "text": RDAP_ANSWER.text,
            }
        ],
    }
    assert document["dns"] == {
        "records": details.dns_records,
        "failures": [],
        "nxdomain": False,
    }

    assert after.job is not None
    assert after.job.interval_seconds == 30 * 86400  # 400 days to go
    assert result.next_update is not None and result.next_update.due_at == after.job.due_at


async def test_a_failed_first_retrieval_is_still_kept_as_raw(
    services: Services, device_id: int
) -> None:
    result = await audit(services, device_id, failed())

    assert result.first and result.changed
    assert result.error is not None and result.error.code == ErrorCode.LOOKUP_FAILED
    after = stored(services.engine, device_id)
    assert after.details is not None
    assert after.details.registrar is None and after.details.expires_at is None
    assert after.details.registered is None
    assert after.details.registration_error == failed().message
    assert after.device.last_update_error == f"Registration look-up failed: {failed().message}"
    [raw] = after.raw_files
    registration = raw_document(services, raw)["registration"]
    assert isinstance(registration, dict)
    assert registration["result"] == "failed"
    assert [f["source"] for f in registration["failures"]] == ["RDAP", "WHOIS"]
    [note] = after.notes
    assert note.endswith(f"Registration look-up failed: {failed().message}.")
    assert after.job is not None and after.job.interval_seconds == 3600


# --- later retrievals: changes, RAW files, notes -----------------------------------------------


async def test_nothing_new_means_a_note_and_no_raw_file(services: Services, device_id: int) -> None:
    await audit(services, device_id, found())
    result = await audit(services, device_id, found(), at=NOW + timedelta(days=30))

    assert not result.first and not result.changed
    assert result.raw_file is None
    after = stored(services.engine, device_id)
    assert len(after.raw_files) == 1
    assert after.notes[-1].startswith("Domain details checked for example.com: no changes.")
    assert after.device.last_updated_at == NOW + timedelta(days=30)


async def test_the_same_details_from_whois_instead_of_rdap_are_no_change(
    services: Services, device_id: int
) -> None:
    await audit(services, device_id, found())
    result = await audit(services, device_id, found(source="WHOIS"))

    assert result.changes == [] and not result.changed
    after = stored(services.engine, device_id)
    assert after.details is not None and after.details.source == "WHOIS"
    assert len(after.raw_files) == 1


async def test_registration_changes_are_noted_old_to_new(
    services: Services, device_id: int
) -> None:
    await audit(services, device_id, found())
    renewed = replace(
        DETAILS,
        registrar="Registrar B",
        expires_at=EXPIRES + timedelta(days=365),
        name_servers=("ns1.example.net",),
    )
    result = await audit(services, device_id, found(renewed), at=NOW + timedelta(days=1))

    old_expiry = EXPIRES.isoformat()
    new_expiry = (EXPIRES + timedelta(days=365)).isoformat()
    assert shown(result.changes) == [
        ("Registrar", "Registrar A", "Registrar B"),
        ("Expires", old_expiry, new_expiry),
        ("Name servers", "ns1.example.com, ns2.example.com", "ns1.example.net"),
    ]
    after = stored(services.engine, device_id)
    assert after.notes[-1].startswith(
        "Domain details updated for example.com: Registrar: Registrar A → Registrar B; "
        f"Expires: {old_expiry} → {new_expiry}; "
        "Name servers: ns1.example.com, ns2.example.com → ns1.example.net."
    )
    assert len(after.raw_files) == 2
    assert result.raw_file is not None and after.raw_files[-1].id == result.raw_file.id
    assert after.device.expires_at == renewed.expires_at


async def test_a_ttl_change_alone_is_not_counted(services: Services, device_id: int) -> None:
    await audit(services, device_id, found())
    shorter = dns(*(replace(r, ttl=r.ttl // 2) for r in RECORDS))
    result = await audit(services, device_id, found(), shorter)

    assert result.changes == [] and not result.changed
    after = stored(services.engine, device_id)
    assert len(after.raw_files) == 1
    assert "no changes" in after.notes[-1]
    assert after.details is not None
    assert [r["ttl"] for r in after.details.dns_records] == [150, 1800, 150]


async def test_the_same_records_in_another_order_are_no_change(
    services: Services, device_id: int
) -> None:
    await audit(services, device_id, found())
    result = await audit(services, device_id, found(), dns(*reversed(RECORDS)))
    assert not result.changed


async def test_record_changes_are_listed(services: Services, device_id: int) -> None:
    await audit(services, device_id, found())
    moved = dns(
        DnsRecord("example.com.", "A", 300, "192.0.2.2"),
        *RECORDS[1:],
        DnsRecord("example.com.", "TXT", 300, '"v=spf1 -all"'),
    )
    result = await audit(services, device_id, found(), moved)

    assert shown(result.changes) == [
        (
            "DNS Records",
            "3 record(s)",
            '4 record(s): +example.com. A 192.0.2.2, +example.com. TXT "v=spf1 -all", '
            "-example.com. A 192.0.2.1",
        )
    ]
    after = stored(services.engine, device_id)
    assert "DNS Records: 3 record(s) → 4 record(s): +example.com. A 192.0.2.2" in after.notes[-1]
    assert len(after.raw_files) == 2


async def test_many_record_changes_are_summed_up(services: Services, device_id: int) -> None:
    await audit(services, device_id, found())
    many = dns(*(DnsRecord("example.com.", "TXT", 300, f'"token-{i}"') for i in range(10)))
    result = await audit(services, device_id, found(), many)

    [(label, before, after)] = shown(result.changes)
    assert (label, before) == ("DNS Records", "3 record(s)")
    assert after is not None
    assert after.startswith("10 record(s): ")
    assert after.endswith(", and 7 more")  # 13 changes, 6 listed
    assert after.count("+example.com. TXT") == 6


# --- failures keep what was known ----------------------------------------------------------------


async def test_a_failed_registration_keeps_the_good_details(
    services: Services, device_id: int
) -> None:
    await audit(services, device_id, found())
    before = stored(services.engine, device_id)
    result = await audit(services, device_id, failed("HTTP 429 Too Many Requests"))

    assert not result.changed and result.raw_file is None
    assert result.error is not None and result.error.code == ErrorCode.LOOKUP_FAILED
    after = stored(services.engine, device_id)
    assert after.details is not None and before.details is not None
    kept = ("registrar", "expires_at", "name_servers", "statuses", "source", "registered")
    assert {k: getattr(after.details, k) for k in kept} == {
        k: getattr(before.details, k) for k in kept
    }
    assert after.details.registration_error is not None
    assert "HTTP 429" in after.details.registration_error
    assert after.device.expires_at == DETAILS.expires_at
    assert after.device.last_update_error == result.error.message
    assert after.notes[-1].endswith("empty answer from whois.example:43. Previous details kept.")
    assert len(after.raw_files) == 1
    assert after.job is not None and after.job.interval_seconds == 3600
    assert after.job.reason == "the last update failed; retrying"

    # The next good answer clears the error and the schedule follows the expiry again.
    result = await audit(services, device_id, found())
    after = stored(services.engine, device_id)
    assert result.ok
    assert after.details is not None and after.details.registration_error is None
    assert after.device.last_update_error is None
    assert after.job is not None and after.job.interval_seconds == 30 * 86400


@pytest.mark.parametrize("kind", ["servfail", "timeout", "refused"])
async def test_a_failed_dns_look_up_keeps_the_records_and_retries_in_an_hour(
    services: Services, device_id: int, kind: FailureKind
) -> None:
    await audit(services, device_id, found())
    partial = dns(RECORDS[0], failures=(("example.com.", "MX", kind),))
    renewed = replace(DETAILS, registrar="Registrar B")
    result = await audit(services, device_id, found(renewed), partial)

    assert result.error is not None and result.error.code == ErrorCode.DNS_LOOKUP_FAILED
    # The registration part was read and is applied; the records stay as they were.
    assert shown(result.changes) == [("Registrar", "Registrar A", "Registrar B")]
    after = stored(services.engine, device_id)
    assert after.details is not None
    assert after.details.registrar == "Registrar B"
    assert len(after.details.dns_records) == len(RECORDS)
    assert after.details.dns_error == f"DNS look-up failed ({kind}: example.com. MX)"
    assert after.device.last_update_error == after.details.dns_error
    assert after.notes[-1].endswith(f"{after.details.dns_error}; previous records kept.")
    assert after.job is not None and after.job.interval_seconds == 3600
    assert "DNS" in after.job.reason


async def test_nxdomain_is_an_answer(services: Services, device_id: int) -> None:
    await audit(services, device_id, found())
    gone = DnsLookup(records=(), failures=(), nxdomain=True)
    result = await audit(services, device_id, found(), gone)

    assert result.ok
    assert shown(result.changes) == [
        (
            "DNS Records",
            "3 record(s)",
            "0 record(s): -example.com. A 192.0.2.1, -example.com. MX 10 mail.example.com., "
            "-www.example.com. CNAME example.com.",
        )
    ]
    after = stored(services.engine, device_id)
    assert after.details is not None
    assert after.details.dns_records == [] and after.details.dns_error is None
    assert "DNS: example.com does not exist (NXDOMAIN)." in after.notes[-1]
    assert after.job is not None and after.job.interval_seconds == 30 * 86400


async def test_a_domain_no_longer_registered(services: Services, device_id: int) -> None:
    await audit(services, device_id, found())
    result = await audit(services, device_id, RegistrationNotRegistered("WHOIS", (WHOIS_ANSWER,)))

    assert result.ok
    assert shown(result.changes) == [("Registered", "yes", "no")]
    after = stored(services.engine, device_id)
    assert after.details is not None
    assert after.details.registered is False
    assert after.details.source == "WHOIS"
    assert "has no record of example.com" in after.notes[-1]
    assert len(after.raw_files) == 2


async def test_a_domain_never_registered(services: Services, device_id: int) -> None:
    result = await audit(services, device_id, RegistrationNotRegistered("RDAP"), dns())

    assert result.ok and result.first
    after = stored(services.engine, device_id)
    assert after.details is not None
    assert after.details.registered is False
    assert after.details.registrar is None and after.details.expires_at is None
    assert after.details.source == "RDAP"
    assert after.device.expires_at is None
    assert "not registered" in after.notes[-1]
    assert after.job is not None and after.job.reason == "the expiry date is unknown"


async def test_idn_notes_use_the_u_labels(services: Services, device_id: int) -> None:
    snap = DomainSnapshot("xn--bcher-kva.de", RegistrationNotRegistered("WHOIS"), dns(), NOW)
    result = save(services, Retrieved(device_id, "Domain", domain=snap))
    assert result.note.startswith("Domain details looked up for bücher.de.")
    assert "has no record of bücher.de" in result.note


# --- manual registration details -----------------------------------------------------------------


async def test_manual_details_replace_the_source_and_drive_the_schedule(
    services: Services, device_id: int
) -> None:
    await audit(services, device_id, found())
    expiry = NOW + timedelta(days=20)
    entry = ManualRegistration(expires_at=expiry, registrar="Me")
    changes = shown(save(services, Retrieved(device_id, "Domain", manual=entry)).changes)

    old_expiry = EXPIRES.isoformat()
    assert changes == [
        ("Registrar", "Registrar A", "Me"),
        ("Expires", old_expiry, expiry.isoformat()),
    ]
    after = stored(services.engine, device_id)
    assert after.details is not None
    assert (after.details.source, after.details.registrar, after.details.expires_at) == (
        "MANUAL",
        "Me",
        expiry,
    )
    assert after.details.name_servers == list(DETAILS.name_servers)
    assert after.device.expires_at == expiry
    assert after.notes[-1] == (
        "Registration details entered manually: Registrar: Registrar A → Me; "
        f"Expires: {old_expiry} → {expiry.isoformat()}."
    )
    assert after.job is not None
    assert after.job.interval_seconds == 48 * 3600
    assert after.job.due_at == NOW + timedelta(hours=48)


async def test_manual_details_on_a_domain_never_looked_up(
    services: Services, device_id: int
) -> None:
    expiry = NOW + timedelta(days=3)
    entry = ManualRegistration(expires_at=expiry, registrar=None)
    changes = shown(save(services, Retrieved(device_id, "Domain", manual=entry)).changes)
    assert changes == [("Expires", None, expiry.isoformat())]
    after = stored(services.engine, device_id)
    assert after.details is not None and after.details.source == "MANUAL"
    assert after.job is not None and after.job.interval_seconds == 24 * 3600


def shown(changes: list[Change]) -> list[tuple[str, str | None, str | None]]:
    """Changes as an Activity note shows them."""
    return [(change.label, change.old, change.new) for change in changes]
