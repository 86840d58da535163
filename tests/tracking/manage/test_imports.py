"""Importing devices from CSV: each row as createDevice creates it, concurrently, idempotent."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from models import ActivityNote, Device, OrganizationType, RawFile, SslDetailsRecord
from models.db import reader
from tests.conftest import World, services_with
from tests.fakes import pki
from tests.fakes.tls_server import standard_certificates
from tracking.core.csvfiles import read_import_file
from tracking.core.errors import ValidationError
from tracking.core.sources import HostSource, parse_domain, parse_ssl_source
from tracking.manage import access, devices, imports, inventory, updates
from tracking.manage.access import Viewer
from tracking.manage.devices import NewDevice
from tracking.probes.tls import TlsHandshake
from tracking.refresh.rawstore import StorageError, StoredBlob
from tracking.refresh.services import Services

NOT_FOUND_HOST = "SSL Certificate not found. Please check spelling and try again."
URI_FORMAT = "Please double-check your input and try again (Invalid URI Format)"
HEADER = ["organization", "category", "source", "name", "contract", "description", "active"]


def organization(services: Services, admin: Viewer, name: str = "Acme", **kw: Any) -> int:
    org = inventory.create_organization(
        services.engine, viewer=admin, name=name, type=kw.get("type", OrganizationType.CUSTOMER)
    )
    assert org.id is not None
    return org.id


def csv_text(*rows: Sequence[str], header: Sequence[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([*row, *[""] * (len(header) - len(row))] for row in rows)
    return out.getvalue()


async def run(
    services: Services, viewer: Viewer, text: str, *, dry_run: bool = False
) -> imports.ImportReport:
    return await imports.import_csv(services, viewer=viewer, text=text, dry_run=dry_run)


def all_devices(services: Services) -> list[Device]:
    with reader(services.engine) as session:
        return list(session.exec(select(Device).order_by(col(Device.id))))


def notes(services: Services, device_id: int | None) -> list[str]:
    with reader(services.engine) as session:
        query = select(ActivityNote).where(ActivityNote.device_id == device_id)
        return [n.text for n in session.exec(query.order_by(col(ActivityNote.id)))]


def raw_count(services: Services, device_id: int | None) -> int:
    with reader(services.engine) as session:
        query = sa.select(sa.func.count()).where(col(RawFile.device_id) == device_id)
        return int(session.execute(query).scalar_one())


def kind(device: Device) -> tuple[str, str]:
    """DOMAIN, then HOST, then PEM devices."""
    return (device.ssl_source_kind or "", device.domain or "")


def parse_error(parse: Any, text: str) -> str:
    """The message createDevice gives for a source that does not parse."""
    with pytest.raises(ValidationError) as refused:
        parse(text)
    return refused.value.message


def errors(report: imports.ImportReport) -> list[tuple[int, str, str]]:
    return [(e.row, e.code, e.message) for e in report.errors]


# --- created as createDevice creates it ---------------------------------------------------------


async def test_each_row_is_created_exactly_as_create_device_creates_it(
    services: Services, admin: Viewer, world: World
) -> None:
    acme = organization(services, admin, "Acme")
    other = organization(services, admin, "Other")
    pem = pki.test_ca().leaf("pem.example", dns_names=["pem.example"]).pem
    report = await run(
        services,
        admin,
        csv_text(
            ["Acme", "SSL_CERTIFICATE", world.host("good.test")],
            ["Acme", "ssl_certificate", pem, "From a PEM", "", "Pasted by hand", "false"],
            ["Acme", "Domain", "*.example.com"],
        ),
    )
    assert (report.created, report.skipped, report.failed, report.errors) == (3, 0, 0, [])

    for new in (
        NewDevice(
            other, devices.DeviceCategory.SSL_CERTIFICATE, ssl_source=world.host("good.test")
        ),
        NewDevice(
            other,
            devices.DeviceCategory.SSL_CERTIFICATE,
            ssl_source=pem,
            name="From a PEM",
            description="Pasted by hand",
            active=False,
        ),
        NewDevice(other, devices.DeviceCategory.DOMAIN, domain="*.example.com"),
    ):
        await devices.create_device(services, viewer=admin, new=new)

    rows = all_devices(services)
    imported = sorted((d for d in rows if d.organization_id == acme), key=kind)
    direct = sorted((d for d in rows if d.organization_id == other), key=kind)
    fields = ["category", "name", "description", "active", "ssl_source_kind", "ssl_host"]
    fields += ["ssl_port", "ssl_pem", "domain", "expires_at", "last_update_error"]
    fields += ["contract_id", "product_id", "parent_id"]
    for mine, theirs in zip(imported, direct, strict=True):
        assert [getattr(mine, f) for f in fields] == [getattr(theirs, f) for f in fields]
        assert notes(services, mine.id) == notes(services, theirs.id)
        assert raw_count(services, mine.id) == raw_count(services, theirs.id)
    good = imported[1]
    assert notes(services, good.id)[0] == "Device created by admin."
    assert raw_count(services, good.id) == 1
    with reader(services.engine) as session:
        details = session.get(SslDetailsRecord, good.id)
    assert details is not None and details.common_name == "good.test"
    assert not imported[2].active


async def test_importing_the_same_file_twice_creates_nothing_the_second_time(
    services: Services, admin: Viewer, world: World
) -> None:
    organization(services, admin, "Acme")
    pem = standard_certificates()["good.test"].leaf.pem
    text = csv_text(
        ["Acme", "SSL_CERTIFICATE", world.host("good.test")],
        ["Acme", "SSL_CERTIFICATE", pem],
        ["Acme", "DOMAIN", "*.example.com"],
        ["Acme", "DOMAIN", "example.org"],
    )
    first = await run(services, admin, text)
    assert (first.created, first.skipped, first.failed) == (4, 0, 0), first.errors
    before = [(d.id, d.modified_at) for d in all_devices(services)]
    connections = len(world.tls.connections)

    second = await run(services, admin, text)
    assert (second.created, second.skipped, second.failed, second.errors) == (0, 4, 0, [])
    assert [(d.id, d.modified_at) for d in all_devices(services)] == before
    assert len(world.tls.connections) == connections  # nothing was retrieved again


async def test_a_source_spelled_differently_is_the_same_device(
    services: Services, admin: Viewer, world: World
) -> None:
    organization(services, admin, "Acme")
    organization(services, admin, "Other")
    leaf = standard_certificates()["good.test"].leaf
    rewrapped = "Some text around it\r\n" + leaf.pem.replace("\n", "\r\n") + "\r\nand after"
    report = await run(
        services,
        admin,
        csv_text(
            ["Acme", "SSL_CERTIFICATE", world.host("good.test")],
            ["Acme", "SSL_CERTIFICATE", f"https://GOOD.test:{world.tls_port}/some/path"],
            ["Acme", "SSL_CERTIFICATE", leaf.pem],
            ["Acme", "SSL_CERTIFICATE", rewrapped],
            ["Acme", "DOMAIN", "*.Example.COM"],
            ["Acme", "DOMAIN", "*.example.com."],
            ["Acme", "DOMAIN", "https://www.bücher.de/x"],
            ["Acme", "DOMAIN", "xn--bcher-kva.de"],
            ["Other", "SSL_CERTIFICATE", world.host("good.test")],  # another organization
            ["Acme", "SSL_CERTIFICATE", world.host("self-signed.test")],  # another host
        ),
    )
    assert (report.created, report.skipped, report.failed) == (6, 4, 0), report.errors
    domains = sorted(d.domain for d in all_devices(services) if d.domain)
    assert domains == ["*.example.com", "xn--bcher-kva.de"]


# --- row errors ---------------------------------------------------------------------------------


async def test_a_bad_row_never_stops_the_others_and_errors_name_their_row(
    services: Services, admin: Viewer, world: World, closed_port: int
) -> None:
    acme = organization(services, admin, "Acme")
    organization(services, admin, "Other")
    inventory.create_contract(services.engine, viewer=admin, organization_id=acme, name="Gold")
    report = await run(
        services,
        admin,
        csv_text(
            ["Acme", "SSL_CERTIFICATE", world.host("good.test"), "", "Gold"],
            ["Acme", "SSL_CERTIFICATE", "\\datto.com"],
            ["Nobody", "SSL_CERTIFICATE", world.host("good.test")],
            ["Acme", "SSL_CERTIFICATE", f"127.0.0.1:{closed_port}"],
            ["Other", "SSL_CERTIFICATE", world.host("good.test"), "", "Gold"],
            ["Acme", "STANDARD", "x"],
            ["Acme", "DOMAIN", "example.com", "", "", "", "maybe"],
            ["Acme", "DOMAIN", "", "a name"],
            ["Acme", "DOMAIN", "-----BEGIN CERTIFICATE-----"],
            [
                "Acme",
                "SSL_CERTIFICATE",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            ],
            ["Acme", "SSL_CERTIFICATE", world.host("expired.test")],
        ),
    )
    assert [(e.row, e.code) for e in report.errors] == [
        (2, "INVALID_URI_FORMAT"),
        (3, "NOT_FOUND"),
        (4, "CERTIFICATE_NOT_FOUND"),
        (5, "NOT_FOUND"),
        (6, "INVALID_INPUT"),
        (7, "INVALID_INPUT"),
        (8, "REQUIRED"),
        (9, "INVALID_DOMAIN"),
        (10, "INVALID_PEM"),
    ]
    messages = [e.message for e in report.errors]
    assert messages[:8] == [
        URI_FORMAT,
        "Organization not found.",
        NOT_FOUND_HOST,
        "Contract not found.",
        "category must be DOMAIN or SSL_CERTIFICATE, not 'STANDARD'.",
        "active must be true or false, not 'maybe'.",
        "source is required.",
        parse_error(parse_domain, "-----BEGIN CERTIFICATE-----"),
    ]
    assert messages[8] == parse_error(parse_ssl_source, "-----BEGIN CERTIFICATE-----\nAAAA")
    assert (report.created, report.skipped, report.failed) == (2, 0, 9)
    created = all_devices(services)
    by_name = {d.name: d for d in created}
    assert sorted(by_name) == [world.host("expired.test"), world.host("good.test")]
    assert by_name[world.host("good.test")].contract_id is not None


async def test_organizations_the_user_may_not_see_are_not_found_like_missing_ones(
    services: Services, admin: Viewer, world: World
) -> None:
    organization(services, admin, "Acme")
    organization(services, admin, "Hidden Vendor", type=OrganizationType.VENDOR)
    level = access.create_security_level(
        services.engine,
        viewer=admin,
        name="Customers only",
        crm_access=True,
        view_organization_types=[OrganizationType.CUSTOMER],
        can_add_devices=True,
        can_edit_devices=True,
        can_delete_devices=False,
    )
    user, _, _ = access.create_user(
        services.engine, viewer=admin, name="tech", security_level_id=level.id
    )
    tech = access.viewer_for(user, level)
    report = await run(
        services,
        tech,
        csv_text(
            ["Hidden Vendor", "DOMAIN", "*.example.com"],
            ["No Such Org", "DOMAIN", "*.example.com"],
            ["Acme", "DOMAIN", "*.example.com"],
        ),
    )
    assert errors(report) == [
        (1, "NOT_FOUND", "Organization not found."),
        (2, "NOT_FOUND", "Organization not found."),
    ]
    assert report.created == 1
    assert notes(services, all_devices(services)[0].id)[0] == "Device created by tech."


async def test_a_user_who_may_not_add_devices_gets_forbidden_rows(
    services: Services, admin: Viewer
) -> None:
    organization(services, admin, "Acme")
    level = access.create_security_level(
        services.engine,
        viewer=admin,
        name="Read only",
        crm_access=True,
        view_organization_types=[OrganizationType.CUSTOMER],
        can_add_devices=False,
        can_edit_devices=False,
        can_delete_devices=False,
    )
    user, _, _ = access.create_user(
        services.engine, viewer=admin, name="reader", security_level_id=level.id
    )
    report = await run(
        services, access.viewer_for(user, level), csv_text(["Acme", "DOMAIN", "*.example.com"])
    )
    assert errors(report) == [
        (1, "FORBIDDEN", "Your security level does not allow adding devices.")
    ]
    assert all_devices(services) == []


async def test_several_organizations_of_one_name_are_ambiguous(
    services: Services, admin: Viewer
) -> None:
    organization(services, admin, "Acme")
    organization(services, admin, "Acme")
    report = await run(services, admin, csv_text(["Acme", "DOMAIN", "*.example.com"]))
    assert [(e.row, e.code) for e in report.errors] == [(1, "INVALID_INPUT")]
    assert "Several organizations are named 'Acme'" in report.errors[0].message


async def test_rows_refused_by_the_retrieval_budget_are_row_errors(
    services: Services, admin: Viewer, world: World
) -> None:
    organization(services, admin, "Acme")
    services = services_with(services, retrievals_per_10_min=2)
    pem = standard_certificates()["good.test"].leaf.pem
    report = await run(
        services,
        admin,
        csv_text(
            ["Acme", "SSL_CERTIFICATE", world.host("good.test")],
            ["Acme", "SSL_CERTIFICATE", world.host("expired.test")],
            ["Acme", "SSL_CERTIFICATE", world.host("self-signed.test")],
            ["Acme", "SSL_CERTIFICATE", pem],  # decoded locally: no retrieval
            ["Acme", "DOMAIN", "*.example.com"],  # a wildcard: no retrieval
        ),
    )
    assert [(e.row, e.code) for e in report.errors] == [(3, "RATE_LIMITED")]
    assert report.errors[0].message.startswith("Too many retrievals: at most 2 per 10 minutes.")
    assert report.created == 4
    again = await run(services, admin, csv_text(["Acme", "DOMAIN", "*.example.com"]))
    assert (again.created, again.skipped) == (0, 1)  # a skipped row spends nothing either


async def test_an_unexpected_failure_of_one_row_saves_nothing_for_it_and_not_stop_others(
    services: Services,
    admin: Viewer,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    organization(services, admin, "Acme")
    real = services.raw_store.put

    def broken(content: bytes) -> Any:
        if b"host: expired.test" in content:
            raise RuntimeError("disk on fire")
        return real(content)

    monkeypatch.setattr(services.raw_store, "put", broken)
    report = await run(
        services,
        admin,
        csv_text(
            ["Acme", "SSL_CERTIFICATE", world.host("expired.test")],
            ["Acme", "SSL_CERTIFICATE", world.host("good.test")],
        ),
    )
    assert errors(report) == [
        (1, "SAVE_FAILED", "The device could not be saved; the error was logged.")
    ]
    assert [d.ssl_host for d in all_devices(services)] == ["good.test"]
    assert "disk on fire" in caplog.text


async def test_with_tracking_disabled_host_rows_are_refused_and_domains_saved(
    services: Services, admin: Viewer, world: World
) -> None:
    organization(services, admin, "Acme")
    updates.set_tracking_enabled(services, viewer=admin, enabled=False)
    report = await run(
        services,
        admin,
        csv_text(
            ["Acme", "SSL_CERTIFICATE", world.host("good.test")],
            ["Acme", "DOMAIN", "example.com"],
        ),
    )
    assert [(e.row, e.code) for e in report.errors] == [(1, "TRACKING_DISABLED")]
    assert [d.domain for d in all_devices(services)] == ["example.com"]
    assert world.tls.connections == []


# --- dry run, concurrency, chunks -------------------------------------------------------------


async def test_a_dry_run_checks_every_row_retrieves_nothing_and_creates_nothing(
    services: Services, admin: Viewer, world: World
) -> None:
    organization(services, admin, "Acme")
    await run(services, admin, csv_text(["Acme", "DOMAIN", "*.example.com"]))
    text = csv_text(
        ["Acme", "SSL_CERTIFICATE", world.host("good.test")],
        ["Acme", "SSL_CERTIFICATE", world.host("good.test")],
        ["Acme", "DOMAIN", "*.example.com"],
        ["Nobody", "DOMAIN", "example.net"],
        ["Acme", "SSL_CERTIFICATE", "htps:\\\\datto.com"],
        ["Acme", "DOMAIN", "example.com"],
    )
    dry = await run(services, admin, text, dry_run=True)
    assert (dry.created, dry.skipped, dry.failed) == (2, 2, 2)
    assert [(e.row, e.code) for e in dry.errors] == [
        (4, "NOT_FOUND"),
        (5, "HTTP_WEB_REQUEST_ERROR"),
    ]
    assert len(all_devices(services)) == 1
    assert world.tls.connections == []
    assert world.rdap.requests == [] and world.dns.queries == []

    real = await run(services, admin, text)
    assert (real.created, real.skipped, real.failed) == (dry.created, dry.skipped, dry.failed)
    assert errors(real) == errors(dry)


async def test_retrievals_run_concurrently_and_bounded(
    services: Services, admin: Viewer, world: World
) -> None:
    organization(services, admin, "Acme")
    # A generous timeout: 16 handshakes wait for each other's database writes on a busy machine.
    services = services_with(services, probe_timeout_s=15.0)
    inner = services.tls
    in_flight = 0
    peak = 0

    class Counting:
        async def fetch_chain(
            self, source: HostSource, *, address: str | None = None
        ) -> TlsHandshake:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.05)
                return await inner.fetch_chain(source, address=address)
            finally:
                in_flight -= 1

    services.tls = Counting()
    world.dns.load({f"h{i}.test.": {"A": "127.0.0.1"} for i in range(40)}, origin="test.")
    rows = [["Acme", "SSL_CERTIFICATE", world.host(f"h{i}.test")] for i in range(40)]
    report = await run(services, admin, csv_text(*rows))
    assert (report.created, report.failed) == (40, 0), report.errors[:3]
    assert peak == devices.CONCURRENCY


async def test_a_large_file_is_imported_in_chunks_with_file_wide_row_numbers(
    services: Services, admin: Viewer
) -> None:
    organization(services, admin, "Acme")
    rows = [["Acme", "DOMAIN", f"*.d{i}.example"] for i in range(7)]
    rows[5] = ["Acme", "DOMAIN", "*.d1.example"]  # a duplicate in a later chunk
    rows[6] = ["Nobody", "DOMAIN", "*.x.example"]
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1

    parsed = read_import_file(csv_text(*rows))
    for dry_run in (True, False):
        done = 0
        report = await imports.import_file(
            services, viewer=admin, parsed=parsed, dry_run=dry_run, on_row=tick, chunk_rows=2
        )
        assert (report.created, report.skipped, report.failed) == (5, 1, 1)
        assert [(e.row, e.code) for e in report.errors] == [(7, "NOT_FOUND")]
        assert done == 7
    assert len(all_devices(services)) == 5


async def test_over_five_thousand_rows_in_one_request_are_refused_as_a_whole(
    services: Services, admin: Viewer
) -> None:
    organization(services, admin, "Acme")
    text = csv_text(*[["Acme", "DOMAIN", f"*.d{i}.example"] for i in range(imports.MAX_ROWS + 1)])
    report = await run(services, admin, text)
    assert (report.created, report.skipped, report.failed) == (0, 0, 0)
    assert [(e.row, e.code) for e in report.errors] == [(0, "TOO_LARGE")]
    assert "5,001 rows; at most 5,000" in report.errors[0].message
    assert all_devices(services) == []

    just = csv_text(*[["Acme", "DOMAIN", f"*.d{i}.example"] for i in range(imports.MAX_ROWS)])
    assert (await run(services, admin, just, dry_run=True)).created == imports.MAX_ROWS


async def test_bad_csv_is_reported_by_row_and_the_good_rows_still_imported(
    services: Services, admin: Viewer
) -> None:
    organization(services, admin, "Acme")
    text = (
        "\ufeffSource,Organization,CATEGORY\r\n"
        "*.a.example,Acme,DOMAIN\r\n"
        "*.b.example,Acme,DOMAIN,extra\r\n"
        "*.c.example,Acme\r\n"
        '"*.d.example"x,Acme,DOMAIN\r\n'
        "*.e.example,Acme,DOMAIN\r\n"
        "*.f.example,Acme,\udcff\r\n"
    )
    report = await run(services, admin, text)
    assert [(e.row, e.code) for e in report.errors] == [
        (2, "INVALID_CSV"),
        (3, "INVALID_CSV"),
        (4, "INVALID_CSV"),
        (6, "INVALID_ENCODING"),
    ]
    assert sorted(d.domain or "" for d in all_devices(services)) == ["*.a.example", "*.e.example"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty"),
        ("Acme,DOMAIN,example.com\n", "The first row must be a header"),
        ("organization;category;source\nAcme;DOMAIN;x\n", "seems to use ';'"),
        ("organization,category,source,owner\n", "Unknown column(s) 'owner'"),
        ("organization,category\n", "Missing required column(s): source."),
    ],
)
async def test_a_file_without_a_usable_header_is_refused_as_a_whole(
    services: Services, admin: Viewer, text: str, message: str
) -> None:
    report = await run(services, admin, text)
    assert [(e.row, e.code) for e in report.errors] == [(0, "INVALID_CSV")]
    assert message in report.errors[0].message
    assert (report.created, report.skipped, report.failed) == (0, 0, 0)


async def test_the_example_file_of_the_readme_passes_a_dry_run(
    services: Services, admin: Viewer
) -> None:
    acme = organization(services, admin, "Acme Corp")
    inventory.create_contract(
        services.engine, viewer=admin, organization_id=acme, name="Support 2026"
    )
    example = Path(__file__).parents[3] / "examples" / "devices.csv"
    report = await run(services, admin, example.read_text(encoding="utf-8"), dry_run=True)
    assert (report.created, report.skipped, report.failed, report.errors) == (6, 0, 0, [])


async def test_a_row_whose_save_fails_takes_no_other_row_with_it(
    services: Services, admin: Viewer, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are written in batches; a batch that fails is written row by row."""
    organization(services, admin)
    world.dns.load({f"s{i}.test.": {"A": "127.0.0.1"} for i in range(6)}, origin="test.")
    real_put = services.raw_store.put

    def put(content: bytes) -> StoredBlob:
        if b"host: s3.test" in content:
            raise StorageError()
        return real_put(content)

    monkeypatch.setattr(services.raw_store, "put", put)
    rows = [["Acme", "SSL_CERTIFICATE", world.host(f"s{i}.test")] for i in range(6)]
    report = await run(services, admin, csv_text(*rows))
    assert (report.created, report.failed) == (5, 1)
    [problem] = report.errors
    assert (problem.row, problem.code) == (4, "SAVE_FAILED")
    names = sorted(device.name for device in all_devices(services))
    assert names == sorted(world.host(f"s{i}.test") for i in range(6) if i != 3)


async def test_the_statements_of_an_import_do_not_grow_with_its_rows(
    services: Services, admin: Viewer
) -> None:
    """Validation looks the product up once, and a batch of devices and their "created" notes
    are inserted in a statement each, not one per row."""
    organization(services, admin, "Acme")
    pems = [pki.test_ca().leaf(f"p{i}.example", dns_names=[f"p{i}.example"]).pem for i in range(40)]
    statements: list[object] = []  # what dstrack executes (SQLite's driver may run it row by row)
    sa.event.listen(services.engine, "before_execute", lambda *a: statements.append(a[1]))

    async def statements_for(numbers: range) -> int:
        statements.clear()
        rows = [["Acme", "SSL_CERTIFICATE", pems[i], f"PEM {i}"] for i in numbers]
        report = await run(services, admin, csv_text(*rows))
        assert (report.created, report.failed) == (len(numbers), 0), report.errors[:3]
        return len(statements)

    few, many = await statements_for(range(0, 4)), await statements_for(range(4, 40))
    assert many <= few + 3, f"{few} statements for 4 rows, {many} for 36"
