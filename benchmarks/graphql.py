"""c. GraphQL: a page of devices with organization, product and SSL details.

1,000 SSL Certificate devices in 10 organizations, each with its SSL details. The page is
asked for over HTTP through ``httpx.ASGITransport`` against ``api.app.create_app(services=...)``
(token check, Strawberry with its limits and document cache, the page's batched relations,
JSON). Two checks:

* SQL statements per request for pages of 10 and of 100 devices: must be equal (no N+1).
* Server time for a page of 100 versus the same rows fetched with hand-written SQL joins (the
  page and its total count) on the same engine: at most ``TARGET`` times.

For scale, a third time is printed: the framework's floor - the same query executed by a bare
Strawberry schema of plain types with synchronous resolvers over the rows of that raw SQL (no
HTTP, no authentication, no ORM, no DataLoader). What dstrack adds is the difference between
this floor and its own time; graphql-core's per-field execution (about 3,600 fields here) is
most of the floor. Both parse and validate a query text once: dstrack with its document cache,
the floor with Strawberry's ``ParserCache`` and ``ValidationCache``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import graphql
import httpx
import sqlalchemy as sa
import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from api.app import create_app
from benchmarks.common import (
    DEVICES,
    ORGANIZATIONS,
    PRODUCTS,
    SSL_DETAILS,
    Database,
    Result,
    backends,
    database_for,
    heading,
    insert_chunked,
    ms,
    say,
)
from benchmarks.servers import bench_chain
from tracking.core import clock
from tracking.core.certificates import load_pem_certificate
from tracking.core.settings import Settings
from tracking.core.ssl_details import ssl_details
from tracking.refresh.services import Services
from tracking.wiring import build_services

TARGET = 3.0
FLOOR_TARGET = 1.5  # the restatement of c. proposed in benchmarks/RESULTS.md
TOKEN = "benchmark-admin-token"
DEVICE_COUNT = 1000
ORGANIZATION_COUNT = 10

PAGE = """
query($first: Int) {
  devices(first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id name category active expiresAt lastUpdatedAt
      organization { id name type }
      product { id name }
      sslSource { kind host port }
      sslDetails {
        commonName validFrom validUntil issuedBy organization organizationalUnit location
        serialNumber signatureAlgorithm subjectAlternativeNames fingerprintSha256
        chainLength chainTrusted chainTrustError hostnameMatches retrievedAt
      }
    } }
  }
}"""

RAW_PAGE = """
SELECT d.id, d.name, d.category, d.active, d.expires_at, d.last_updated_at,
       d.ssl_source_kind, d.ssl_host, d.ssl_port,
       o.id, o.name, o.type, p.id, p.name,
       s.common_name, s.valid_from, s.valid_until, s.issued_by, s.organization,
       s.organizational_unit, s.location, s.serial_number, s.signature_algorithm,
       s.subject_alternative_names, s.fingerprint_sha256, s.chain_length, s.trusted,
       s.trust_error, s.hostname_matches, s.retrieved_at
FROM devices d
JOIN organizations o ON o.id = d.organization_id
JOIN products p ON p.id = d.product_id
LEFT JOIN ssl_details s ON s.device_id = d.id
ORDER BY d.id
LIMIT 101
"""
RAW_COUNT = "SELECT count(d.id) FROM devices d JOIN organizations o ON o.id = d.organization_id"


def raw_page(engine: sa.Engine) -> tuple[Sequence[sa.Row[Any]], int]:
    """The equivalent raw SQL: the page's rows (one more than a page of 100) and the total."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(RAW_PAGE).all()
        total: int = connection.exec_driver_sql(RAW_COUNT).scalar_one()
    return rows, total


@strawberry.type
class _Org:
    id: strawberry.ID
    name: str
    type: str


@strawberry.type
class _Product:
    id: strawberry.ID
    name: str


@strawberry.type
class _Source:
    kind: str
    host: str | None
    port: int | None


@strawberry.type
class _Details:
    common_name: str | None
    valid_from: str
    valid_until: str
    issued_by: str | None
    organization: str | None
    organizational_unit: str | None
    location: str | None
    serial_number: str
    signature_algorithm: str
    subject_alternative_names: str
    fingerprint_sha256: str
    chain_length: int
    chain_trusted: bool
    chain_trust_error: str | None
    hostname_matches: bool | None
    retrieved_at: str


@strawberry.type
class _Device:
    id: strawberry.ID
    name: str
    category: str
    active: bool
    expires_at: str | None
    last_updated_at: str | None
    organization: _Org
    product: _Product
    ssl_source: _Source | None
    ssl_details: _Details | None


@strawberry.type
class _PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class _Edge:
    cursor: str
    node: _Device


@strawberry.type
class _Connection:
    total_count: int
    page_info: _PageInfo
    edges: list[_Edge]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _bare_schema(engine: sa.Engine) -> strawberry.Schema:
    """The framework floor: the same fields, plain synchronous resolvers over raw rows."""

    @strawberry.type
    class BareQuery:
        @strawberry.field
        def devices(self, first: int = 20) -> _Connection:
            rows, total = raw_page(engine)
            edges = []
            for r in rows[:first]:
                details = None
                if r[14] is not None or r[15] is not None:
                    details = _Details(
                        common_name=r[14],
                        valid_from=str(r[15]),
                        valid_until=str(r[16]),
                        issued_by=r[17],
                        organization=r[18],
                        organizational_unit=r[19],
                        location=r[20],
                        serial_number=r[21],
                        signature_algorithm=r[22],
                        subject_alternative_names=str(r[23]),
                        fingerprint_sha256=r[24],
                        chain_length=r[25],
                        chain_trusted=bool(r[26]),
                        chain_trust_error=r[27],
                        hostname_matches=r[28],
                        retrieved_at=str(r[29]),
                    )
                node = _Device(
                    id=strawberry.ID(f"Device:{r[0]}"),
                    name=r[1],
                    category=r[2],
                    active=bool(r[3]),
                    expires_at=_text(r[4]),
                    last_updated_at=_text(r[5]),
                    organization=_Org(
                        id=strawberry.ID(f"Organization:{r[9]}"), name=r[10], type=r[11]
                    ),
                    product=_Product(id=strawberry.ID(f"Product:{r[12]}"), name=r[13]),
                    ssl_source=_Source(kind=r[6], host=r[7], port=r[8]) if r[6] else None,
                    ssl_details=details,
                )
                edges.append(_Edge(cursor=f"cursor:{r[0]}", node=node))
            return _Connection(
                total_count=total,
                page_info=_PageInfo(
                    has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None
                ),
                edges=edges,
            )

    # Parsed and validated once per query text, as dstrack does (Strawberry's own caches).
    return strawberry.Schema(query=BareQuery, extensions=[ParserCache(), ValidationCache()])


def _core_page(engine: sa.Engine, first: int) -> dict[str, Any]:
    """The page as plain dicts keyed by GraphQL names, from the raw SQL's rows."""
    rows, total = raw_page(engine)
    edges = []
    for r in rows[:first]:
        details = None
        if r[15] is not None:
            details = {
                "commonName": r[14],
                "validFrom": str(r[15]),
                "validUntil": str(r[16]),
                "issuedBy": r[17],
                "organization": r[18],
                "organizationalUnit": r[19],
                "location": r[20],
                "serialNumber": r[21],
                "signatureAlgorithm": r[22],
                "subjectAlternativeNames": str(r[23]),
                "fingerprintSha256": r[24],
                "chainLength": r[25],
                "chainTrusted": bool(r[26]),
                "chainTrustError": r[27],
                "hostnameMatches": r[28],
                "retrievedAt": str(r[29]),
            }
        node = {
            "id": f"Device:{r[0]}",
            "name": r[1],
            "category": r[2],
            "active": bool(r[3]),
            "expiresAt": _text(r[4]),
            "lastUpdatedAt": _text(r[5]),
            "organization": {"id": f"Organization:{r[9]}", "name": r[10], "type": r[11]},
            "product": {"id": f"Product:{r[12]}", "name": r[13]},
            "sslSource": {"kind": r[6], "host": r[7], "port": r[8]} if r[6] else None,
            "sslDetails": details,
        }
        edges.append({"cursor": f"cursor:{r[0]}", "node": node})
    return {
        "totalCount": total,
        "pageInfo": {
            "hasNextPage": len(rows) > first,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
        "edges": edges,
    }


def _core_floor(engine: sa.Engine, sdl: str) -> Callable[[], None]:
    """graphql-core's own floor: the same schema built from its SDL, the query parsed and
    validated once, every field resolved by graphql-core's default resolver over dicts."""
    schema = graphql.build_schema(sdl)
    document = graphql.parse(PAGE)
    assert not graphql.validate(schema, document)
    root = {"devices": lambda _info, first: _core_page(engine, first)}

    def execute() -> None:
        result = graphql.execute_sync(
            schema, document, root_value=root, variable_values={"first": 100}
        )
        assert result.errors is None, result.errors
        json.dumps({"data": result.data})

    return execute


def populate(database: Database) -> None:
    now = clock.now()
    chain = bench_chain()
    leaf_pem = chain.chain_pem.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    details = ssl_details(load_pem_certificate(leaf_pem))
    with database.engine.begin() as connection:
        connection.execute(
            ORGANIZATIONS.insert(),
            [
                {"id": n + 1, "name": f"Customer {n}", "type": "CUSTOMER", "created_at": now}
                for n in range(ORGANIZATION_COUNT)
            ],
        )
        connection.execute(
            PRODUCTS.insert(), [{"id": 1, "name": "Hosting", "is_system": False, "created_at": now}]
        )
    devices, records = [], []
    for i in range(1, DEVICE_COUNT + 1):
        devices.append(
            {
                "id": i,
                "category": "SSL_CERTIFICATE",
                "name": f"www{i}.example.com",
                "description": None,
                "active": True,
                "organization_id": i % ORGANIZATION_COUNT + 1,
                "contract_id": None,
                "product_id": 1,
                "parent_id": None,
                "ssl_source_kind": "HOST",
                "ssl_host": f"www{i}.example.com",
                "ssl_port": 443,
                "ssl_pem": None,
                "domain": None,
                "expires_at": details.valid_until,
                "last_updated_at": now,
                "last_update_error": None,
                "created_at": now,
                "modified_at": now,
            }
        )
        records.append(
            {
                "device_id": i,
                "common_name": f"www{i}.example.com",
                "valid_from": details.valid_from,
                "valid_until": details.valid_until,
                "issued_by": details.issued_by,
                "organization": details.organization,
                "organizational_unit": None,
                "location": "Berlin, Berlin, DE",
                "serial_number": details.serial_number,
                "signature_algorithm": details.signature_algorithm,
                "subject_alternative_names": [f"www{i}.example.com", f"example{i}.com"],
                "fingerprint_sha256": details.fingerprint_sha256,
                "key_type": details.key_type,
                "key_size": details.key_size,
                "chain_pem": chain.chain_pem,
                "chain_length": 2,
                "trusted": True,
                "trust_error": None,
                "hostname_matches": True,
                "address": "192.0.2.10",
                "protocol": "TLSv1.3",
                "retrieved_at": now,
            }
        )
    insert_chunked(database.engine, DEVICES, devices)
    insert_chunked(database.engine, SSL_DETAILS, records)
    if not database.is_sqlite:
        with database.engine.begin() as connection:
            for table in ("devices", "organizations", "products"):
                connection.execute(
                    sa.text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )


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


async def median_async(run: Callable[[], Awaitable[object]], repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        await run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def measure(services: Services, repeat: int) -> tuple[int, int, float, float, float, float]:
    """(statements for 10, statements for 100, GraphQL time, raw SQL time, Strawberry floor,
    graphql-core floor)."""
    bare_schema = _bare_schema(services.engine)
    core_floor = _core_floor(services.engine, bare_schema.as_str())
    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://dstrack.test") as client:

        async def page(first: int) -> dict[str, Any]:
            response = await client.post(
                "/graphql", json={"query": PAGE, "variables": {"first": first}}, headers=headers
            )
            body: dict[str, Any] = response.json()
            assert "errors" not in body, body
            return body

        counts = {}
        for first in (10, 100):
            await page(first)  # warm
            with counting(services) as statements:
                body = await page(first)
            assert len(body["data"]["devices"]["edges"]) == first
            counts[first] = len(statements)

        async def graphql() -> None:
            await client.post(
                "/graphql", json={"query": PAGE, "variables": {"first": 100}}, headers=headers
            )

        async def raw() -> None:
            rows, _ = raw_page(services.engine)
            assert len(rows) == 101

        async def floor() -> None:
            result = await bare_schema.execute(PAGE, variable_values={"first": 100})
            assert result.errors is None, result.errors
            json.dumps({"data": result.data})

        async def core() -> None:
            core_floor()

        # Alternate them so that load from elsewhere on the machine hits all alike.
        graphql_times, raw_times, floor_times, core_times = [], [], [], []
        for _ in range(3):
            graphql_times.append(await median_async(graphql, repeat))
            raw_times.append(await median_async(raw, repeat))
            floor_times.append(await median_async(floor, repeat))
            core_times.append(await median_async(core, repeat))
    return (
        counts[10],
        counts[100],
        statistics.median(graphql_times),
        statistics.median(raw_times),
        statistics.median(floor_times),
        statistics.median(core_times),
    )


def run(*, quick: bool, postgres_url: str | None) -> list[Result]:
    heading("c. GraphQL: a page of 100 devices with organization, product and SSL details")
    repeat = 5 if quick else 15
    results = []
    for label, url in backends(postgres_url):
        with (
            tempfile.TemporaryDirectory(prefix="dstrack-bench-") as tmp,
            database_for(url, Path(tmp)) as database,
        ):
            populate(database)
            settings = Settings(
                database_url=database.url, data_dir=Path(tmp) / "data", admin_token=TOKEN
            )
            services = build_services(settings, database.engine)
            small, large, graphql_time, raw_time, floor_time, core_time = asyncio.run(
                measure(services, repeat)
            )
        ratio = graphql_time / raw_time
        say(
            f"-- {label}: SQL statements per request: {small} for 10 devices, {large} for 100; "
            f"page of 100: GraphQL {ms(graphql_time)}, raw SQL {ms(raw_time)}, ratio {ratio:.2f}; "
            f"bare Strawberry floor {ms(floor_time)} (dstrack / floor "
            f"{graphql_time / floor_time:.2f}, floor / raw SQL {floor_time / raw_time:.1f}); "
            f"graphql-core floor {ms(core_time)} ({core_time / raw_time:.1f}x raw SQL)"
        )
        results.append(
            Result(
                name=f"GraphQL page of 100 / raw SQL ({label})",
                ratio=ratio,
                target=f"<= {TARGET:g}, same statements for 10 and 100",
                passed=ratio <= TARGET and small == large,
                note=f"{small} statements for 10, {large} for 100; "
                f"{ms(graphql_time)} vs {ms(raw_time)}; Strawberry floor {ms(floor_time)}, "
                f"dstrack / floor {graphql_time / floor_time:.2f}; graphql-core alone "
                f"{ms(core_time)} = {core_time / raw_time:.1f}x raw SQL",
                figures={
                    "graphql": graphql_time,
                    "raw": raw_time,
                    "floor": floor_time,
                    "core": core_time,
                },
            )
        )
        # The target proposed instead of 3x raw SQL, which graphql-core alone exceeds.
        results.append(
            Result(
                name=f"GraphQL page of 100 / bare Strawberry schema ({label})",
                ratio=graphql_time / floor_time,
                target=f"<= {FLOOR_TARGET:g} (proposed for c.), same statements for 10 and 100",
                passed=graphql_time / floor_time <= FLOOR_TARGET and small == large,
                note=f"{ms(graphql_time)} vs {ms(floor_time)}",
                figures={"graphql": graphql_time, "floor": floor_time},
            )
        )
    return results
