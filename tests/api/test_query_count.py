"""A page of devices with everything around them costs a fixed number of SQL statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from models import ActivityNote, Device, RawFile, SslDetailsRecord, UpdateJob
from tests.api import helpers, queries
from tests.conftest import GraphQLClient
from tests.fakes import pki
from tracking.core import clock
from tracking.core.ids import decode_pk
from tracking.refresh.services import Services

MAX_STATEMENTS = 12

PAGE = f"""
query($first: Int) {{
  devices(first: $first) {{
    totalCount
    pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{
      id name category active description
      organization {{ id name type }}
      contract {{ id name organization {{ id name }} }}
      product {{ id name isSystem }}
      parent {{ id name organization {{ name }} }}
      children {{ id name }}
      sslSource {{ kind host port }}
      sslDetails {{ {queries.SSL_DETAILS} }}
      domainDetails {{ registrar expiresAt }}
      updateSchedule {{ nextUpdateAt interval reason }}
      activity(first: 5) {{ id createdAt author text }}
      rawFiles {{ id fileName sizeBytes url }}
    }} }}
  }}
}}"""


@contextmanager
def counting(services: Services) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(services.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(services.engine, "before_cursor_execute", record)


def _copy(row: Any, **changes: Any) -> Any:
    data = {column.key: getattr(row, column.key) for column in row.__table__.columns}
    data.update(changes)
    return type(row)(**data)


def _clone_devices(services: Services, template_id: int, count: int) -> None:
    """``count`` more devices like the template, each with its details, job, notes and files;
    every other one is a child of the template."""
    with Session(services.engine) as session:
        template = session.get(Device, template_id)
        details = session.get(SslDetailsRecord, template_id)
        notes = session.exec(
            select(ActivityNote).where(ActivityNote.device_id == template_id)
        ).all()
        files = session.exec(select(RawFile).where(RawFile.device_id == template_id)).all()
        assert template is not None and details is not None and notes and files
        now = clock.now()
        for i in range(count):
            device = _copy(
                template,
                id=None,
                name=f"copy {i}",
                parent_id=template_id if i % 2 else None,
            )
            session.add(device)
            session.flush()
            session.add(_copy(details, device_id=device.id))
            session.add(
                UpdateJob(device_id=device.id, due_at=now, interval_seconds=3600, reason="test")
            )
            for note in notes:
                session.add(_copy(note, id=None, device_id=device.id))
            for raw in files:
                session.add(_copy(raw, id=None, device_id=device.id))
        session.commit()


async def _page(api: GraphQLClient, services: Services, first: int) -> tuple[int, dict[str, Any]]:
    with counting(services) as statements:
        data = await api.ok(PAGE, first=first)
    return len(statements), data["devices"]


async def test_a_page_of_devices_costs_the_same_for_10_and_100(
    api: GraphQLClient, services: Services
) -> None:
    org = await helpers.organization(api)
    contract = (await api.ok(queries.CREATE_CONTRACT, org=org, name="Hosting"))["createContract"]
    template = await helpers.ssl_device(
        api,
        org,
        pki.test_ca().leaf("count.example").pem,
        contractId=contract["contract"]["id"],
    )
    template_id = decode_pk(template["id"], "Device")
    assert template_id is not None

    _clone_devices(services, template_id, 9)
    small, page = await _page(api, services, 100)
    assert page["totalCount"] == 10
    assert len(page["edges"]) == 10

    _clone_devices(services, template_id, 90)
    large, page = await _page(api, services, 100)
    assert page["totalCount"] == 100
    assert len(page["edges"]) == 100

    assert small == large, (small, large)
    assert large <= MAX_STATEMENTS

    # The copies really carry what the query asked for, so every loader had work to do.
    nodes = [edge["node"] for edge in page["edges"]]
    first, copy = nodes[0], nodes[-1]
    assert first["id"] == template["id"]
    assert len(first["children"]) == 4 + 45  # the odd copies of both batches
    assert copy["name"] == "copy 89"
    assert copy["parent"] == {
        "id": template["id"],
        "name": template["name"],
        "organization": {"name": "Acme"},
    }
    assert all(n["organization"]["id"] == org for n in nodes)
    assert all(n["contract"]["organization"]["id"] == org for n in nodes)
    assert all(n["product"]["name"] == "None" for n in nodes)
    assert all(n["sslDetails"]["commonName"] == "count.example" for n in nodes)
    assert all(n["updateSchedule"] is not None for n in nodes[1:])
    assert all(len(n["activity"]) == len(template["activity"]) for n in nodes)
    assert all(len(n["rawFiles"]) == 1 for n in nodes)


async def test_a_single_device_is_cheap_too(api: GraphQLClient, services: Services) -> None:
    org = await helpers.organization(api)
    device = await helpers.ssl_device(api, org, pki.test_ca().leaf("one.example").pem)
    with counting(services) as statements:
        read = (await api.ok(queries.DEVICE, id=device["id"]))["device"]
    assert read == device
    assert len(statements) <= MAX_STATEMENTS
