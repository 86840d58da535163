"""Exporting devices as CSV: visible devices only, filters, safe cells, one query per batch."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from models import DeviceCategory, OrganizationType
from tests.conftest import World
from tests.fakes import pki
from tests.support.clock import Clock
from tracking.core.clock import use_clock
from tracking.core.errors import ValidationError
from tracking.core.ids import encode_id
from tracking.manage import access, devices, exports, inventory
from tracking.manage.access import Viewer
from tracking.manage.devices import NewDevice
from tracking.refresh.services import Services

NOW = pki.NOW


@pytest.fixture
def clock() -> Iterator[Clock]:
    frozen = Clock(NOW)
    with use_clock(frozen):
        yield frozen


def export(services: Services, viewer: Viewer, batch_size: int = 1000, **params: str) -> str:
    filters = exports.export_filter(services.engine, viewer, params)
    return "".join(
        exports.DeviceExport(services.engine, viewer, filters, batch_size=batch_size).chunks()
    )


def table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def org(services: Services, admin: Viewer, name: str, type: str = "CUSTOMER") -> int:
    row = inventory.create_organization(
        services.engine, viewer=admin, name=name, type=OrganizationType(type)
    )
    assert row.id is not None
    return row.id


async def device(services: Services, admin: Viewer, org_id: int, **fields: Any) -> int:
    category = DeviceCategory.DOMAIN if "domain" in fields else DeviceCategory.SSL_CERTIFICATE
    row = await devices.create_device(
        services, viewer=admin, new=NewDevice(org_id, category, **fields)
    )
    assert row.id is not None
    return row.id


def customers_only(services: Services, admin: Viewer) -> Viewer:
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
    return access.viewer_for(user, level)


async def test_one_row_per_device_with_its_details_under_the_exact_header(
    services: Services, admin: Viewer, world: World, clock: Clock
) -> None:
    acme = org(services, admin, "Acme")
    good = await device(services, admin, acme, ssl_source=world.host("good.test"))
    expired = await device(services, admin, acme, ssl_source=world.host("expired.test"), name="Old")
    pem = pki.test_ca().leaf("pem.example", dns_names=["pem.example"]).pem
    from_pem = await device(services, admin, acme, ssl_source=pem)
    domain = await device(services, admin, acme, domain="*.Example.com")
    clock.advance(timedelta(hours=1))

    text = export(services, admin)
    assert text.splitlines()[0] == (
        "id,organization,name,category,source,common_name,issued_by,valid_until,days_left,"
        "chain_trusted,hostname_matches,domain,registrar,expires_at,last_updated_at,"
        "last_update_error"
    )
    rows = {row["id"]: row for row in table(text)}
    assert list(rows) == [encode_id("Device", pk) for pk in (good, expired, from_pem, domain)]
    assert rows[encode_id("Device", good)] == {
        "id": encode_id("Device", good),
        "organization": "Acme",
        "name": world.host("good.test"),
        "category": "SSL_CERTIFICATE",
        "source": world.host("good.test"),
        "common_name": "good.test",
        "issued_by": "dstrack Test Intermediate CA",
        "valid_until": (NOW + timedelta(days=89)).isoformat(),
        "days_left": "88",  # 88 days and 23 hours
        "chain_trusted": "true",
        "hostname_matches": "true",
        "domain": "",
        "registrar": "",
        "expires_at": "",
        "last_updated_at": NOW.isoformat(),
        "last_update_error": "",
    }
    old = rows[encode_id("Device", expired)]
    assert (old["name"], old["days_left"], old["chain_trusted"]) == ("Old", "-71", "false")
    decoded = rows[encode_id("Device", from_pem)]
    assert decoded["source"] == "'" + pem  # a PEM starts with "-": neutralised, still a PEM
    assert (decoded["common_name"], decoded["hostname_matches"]) == ("pem.example", "")
    wildcard = rows[encode_id("Device", domain)]
    assert (wildcard["category"], wildcard["source"], wildcard["domain"]) == (
        "DOMAIN",
        "*.example.com",
        "*.example.com",
    )
    assert wildcard["days_left"] == wildcard["valid_until"] == wildcard["expires_at"] == ""


async def test_numbers_stay_numbers_and_text_a_spreadsheet_would_run_is_neutralised(
    services: Services, admin: Viewer, clock: Clock
) -> None:
    acme = org(services, admin, '=HYPERLINK("http://evil")')
    names = ["=1+2", "+1", "-1", "@SUM(A1)", "plain"]
    for number, name in enumerate(names):
        await device(services, admin, acme, domain=f"*.d{number}.example", name=name)
    rows = table(export(services, admin))
    assert [row["name"] for row in rows] == ["'=1+2", "'+1", "'-1", "'@SUM(A1)", "plain"]
    assert {row["organization"] for row in rows} == {'\'=HYPERLINK("http://evil")'}

    expired = await device(
        services,
        admin,
        acme,
        ssl_source=pki.test_ca().leaf("x.example", not_before=NOW - timedelta(days=40)).pem,
    )
    [row] = [r for r in table(export(services, admin)) if r["id"] == encode_id("Device", expired)]
    assert row["days_left"] == "50"
    clock.advance(timedelta(days=60))
    [row] = [r for r in table(export(services, admin)) if r["id"] == encode_id("Device", expired)]
    assert row["days_left"] == "-10"  # a number, not a formula: no quote


async def test_only_the_devices_of_organizations_the_viewer_may_see(
    services: Services, admin: Viewer
) -> None:
    customer = org(services, admin, "Customer")
    vendor = org(services, admin, "Vendor", "VENDOR")
    mine = await device(services, admin, customer, domain="*.mine.example")
    await device(services, admin, vendor, domain="*.theirs.example")
    tech = customers_only(services, admin)
    assert [row["id"] for row in table(export(services, tech))] == [encode_id("Device", mine)]
    assert len(table(export(services, admin))) == 2
    with pytest.raises(ValidationError) as hidden:
        export(services, tech, organizationId=encode_id("Organization", vendor))
    with pytest.raises(ValidationError) as missing:
        export(services, tech, organizationId=encode_id("Organization", 999))
    assert (hidden.value.code, hidden.value.message) == ("NOT_FOUND", "Organization not found.")
    assert (missing.value.code, missing.value.message) == ("NOT_FOUND", "Organization not found.")


async def test_filters_by_organization_category_and_expiry(
    services: Services, admin: Viewer, clock: Clock
) -> None:
    one = org(services, admin, "One")
    two = org(services, admin, "Two")
    soon = pki.test_ca().leaf("soon.example", not_before=NOW - timedelta(days=80)).pem
    later = pki.test_ca().leaf("later.example").pem
    ids = [
        await device(services, admin, one, ssl_source=soon),
        await device(services, admin, one, ssl_source=later),
        await device(services, admin, one, domain="*.one.example"),
        await device(services, admin, two, ssl_source=pki.test_ca().leaf("two.example").pem),
    ]

    def exported(**params: str) -> list[int]:
        rows = table(export(services, admin, **params))
        return [ids.index(next(i for i in ids if encode_id("Device", i) == r["id"])) for r in rows]

    assert exported() == [0, 1, 2, 3]
    assert exported(organizationId=encode_id("Organization", one)) == [0, 1, 2]
    assert exported(category="DOMAIN") == [2]
    assert exported(category="ssl_certificate", organizationId=encode_id("Organization", two)) == [
        3
    ]
    assert exported(expiringWithinDays="30") == [0]
    assert exported(expiringWithinDays="0") == []
    assert exported(expiringWithinDays="90") == [0, 1, 3]
    assert exported(organizationId="", category=" ") == [0, 1, 2, 3]  # blank is absent


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"organizationId": "nope"}, "organizationId is not the ID of an organization."),
        (
            {"organizationId": encode_id("Device", 1)},
            "organizationId is not the ID of an organization.",
        ),
        (
            {"category": "SERVER"},
            "category must be one of STANDARD, DOMAIN, SSL_CERTIFICATE, not 'SERVER'.",
        ),
        (
            {"expiringWithinDays": "-1"},
            "expiringWithinDays must be a whole number of days from 0 to 36500, not '-1'.",
        ),
        (
            {"expiringWithinDays": "1e3"},
            "expiringWithinDays must be a whole number of days from 0 to 36500, not '1e3'.",
        ),
        (
            {"expiringWithinDays": "99999"},
            "expiringWithinDays must be a whole number of days from 0 to 36500, not '99999'.",
        ),
        (
            {"expiring": "7"},
            "Unknown parameter 'expiring': the parameters are organizationId, category, "
            "expiringWithinDays.",
        ),
    ],
)
def test_bad_parameters_get_a_clear_message(
    services: Services, admin: Viewer, params: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        exports.export_filter(services.engine, admin, params)
    assert (refused.value.code, refused.value.message) == ("INVALID_INPUT", message)


@pytest.mark.parametrize(("batch_size", "batches"), [(3, 3), (7, 1), (2, 4), (100, 1)])
async def test_streamed_in_batches_of_one_query_each(
    services: Services, admin: Viewer, clock: Clock, batch_size: int, batches: int
) -> None:
    acme = org(services, admin, "Acme")
    pem = pki.test_ca().leaf("pem.example").pem
    ids = [await device(services, admin, acme, ssl_source=pem, name=f"c{i}") for i in range(3)]
    ids += [await device(services, admin, acme, domain=f"*.d{i}.example") for i in range(4)]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    filters = exports.export_filter(services.engine, admin, {})
    exporter = exports.DeviceExport(services.engine, admin, filters, batch_size=batch_size)
    sa.event.listen(services.engine, "before_cursor_execute", record)
    try:
        chunks = list(exporter.chunks())
    finally:
        sa.event.remove(services.engine, "before_cursor_execute", record)
    assert len(chunks) == 1 + batches  # the header, then one chunk per batch
    assert len(statements) == batches  # one query per batch, none per device, none at the end
    assert exporter.rows == 7
    rows = table("".join(chunks))
    assert [row["id"] for row in rows] == [encode_id("Device", i) for i in ids]
