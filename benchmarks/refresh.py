"""a. Refresh throughput: devices audited per second end to end, versus bare TLS handshakes.

N host-sourced SSL Certificate devices (``d<i>.bench.test:<port>``) are refreshed with
``tracking.refresh.pipeline.update_many`` - resolution through c-ares against a local DNS server,
TLS handshake with SNI, chain, decoding, trust and host-name verdicts, diff with the last audit,
database write, Activity note and rescheduling - at the concurrency of a scheduled refresh run
(``orchestration.refresh.DEFAULT_CONCURRENCY``). The baseline is the bare asyncio handshake
(``asyncio.open_connection(ssl=...)``, then hang up as the probe does) against the same server, same
client TLS context, same concurrency, measured before, between and after.

Two refresh passes are timed: the first audit of every device (details inserted, a RAW file
written) and the steady state of a scheduled refresh (certificate unchanged: "no changes").
The target holds for the steady pass; both ratios are printed. For the breakdown, the rates of
the probe alone and of probe + decoding (no database) are printed as well.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from benchmarks.common import (
    DEVICES,
    JOBS,
    Database,
    Result,
    backends,
    base_inventory,
    cpu_seconds,
    database_for,
    heading,
    host_device_rows,
    insert_chunked,
    postgres_cpu_seconds,
    say,
)
from benchmarks.servers import LocalServers, bench_chain, device_host, local_servers
from tracking.core import clock
from tracking.core.ids import encode_id
from tracking.core.settings import Nameserver, Settings
from tracking.core.sources import HostSource
from tracking.probes.ares import shared_channels
from tracking.probes.tls import permissive_client_context
from tracking.refresh.certificate import retrieve_certificate
from tracking.refresh.pipeline import update_many
from tracking.refresh.services import Services
from tracking.wiring import build_services

TARGET = 0.5
FIRST_AUDIT_TARGET = 0.35
FORCED_TARGET = 0.45
CONCURRENCY = 16  # orchestration.refresh.DEFAULT_CONCURRENCY
BULK = 100  # forceUpdate's largest request
ADMIN_TOKEN = "benchmark-admin-token-0123456789"
FORCE_UPDATE = """
mutation($ids: [ID!]!) { forceUpdate(ids: $ids) { results { changed errors { code message } } } }"""
AUTHOR = "System (benchmark)"
ROUNDS = 5  # bare and steady passes alternate; the medians are compared


@dataclass
class Phase:
    label: str
    count: int
    wall: float
    client_cpu: float
    server_cpu: float
    database_cpu: float

    @property
    def rate(self) -> float:
        return self.count / self.wall

    @property
    def cpu_per_item(self) -> float:
        """Client CPU seconds per device: what bounds the rate on a loaded machine too."""
        return self.client_cpu / self.count

    def show(self) -> None:
        say(
            f"  {self.label:<52} {self.rate:6.0f}/s  ({self.count} in {self.wall:5.2f} s; "
            f"client CPU {self.cpu_per_item * 1000:.2f} ms each, "
            f"{self.client_cpu / self.wall:4.0%}; "
            f"server CPU {self.server_cpu / self.wall:4.0%}"
            + (f"; PostgreSQL {self.database_cpu / self.wall:4.0%})" if self.database_cpu else ")")
        )


async def measure(
    label: str, servers: LocalServers, count: int, work: Callable[[], Awaitable[object]]
) -> Phase:
    cpu0, server0, start = cpu_seconds(), servers.cpu_seconds(), time.perf_counter()
    database0 = postgres_cpu_seconds()
    await work()
    wall = time.perf_counter() - start
    phase = Phase(
        label,
        count,
        wall,
        cpu_seconds() - cpu0,
        servers.cpu_seconds() - server0,
        postgres_cpu_seconds() - database0,
    )
    phase.show()
    return phase


async def bare_handshakes(port: int, hosts: Sequence[str], concurrency: int) -> None:
    """The baseline: a TLS handshake with SNI per host, then hang up (``abort``, as the probe
    does: no close_notify exchange)."""
    context = permissive_client_context()
    gate = asyncio.Semaphore(concurrency)

    async def one(host: str) -> None:
        async with gate:
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname=host
            )
            writer.transport.abort()

    await asyncio.gather(*(one(h) for h in hosts))


async def gated(
    concurrency: int, items: Sequence[object], call: Callable[[object], Awaitable[object]]
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: object) -> None:
        async with gate:
            await call(item)

    await asyncio.gather(*(one(i) for i in items))


def bench_services(
    database: Database, servers: LocalServers, data_dir: Path, *, system_resolver: bool = False
) -> Services:
    """Services as a deployment builds them: the system trust store plus the benchmark root
    given as ``DSTRACK_CA_BUNDLE``, DNS through the configured (local) nameserver - or, with
    ``system_resolver``, as by default: no ``DSTRACK_DNS_NAMESERVERS``, ``getaddrinfo``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    bundle = data_dir / "bench-root.pem"
    bundle.write_bytes(bench_chain().root.public_bytes(serialization.Encoding.PEM))
    settings = Settings(
        database_url=database.url,
        data_dir=data_dir,
        dns_nameservers=() if system_resolver else (Nameserver("127.0.0.1", servers.dns_port),),
        allow_private_targets=True,
        probe_timeout_s=30.0,
        ca_bundle=bundle,
        admin_token=ADMIN_TOKEN,
        retrievals_per_10_min=10**9,
    )
    return build_services(settings, database.engine)


def add_host_devices(
    database: Database,
    port: int,
    count: int,
    *,
    first_id: int = 1,
    host: Callable[[int], str] = device_host,
) -> list[int]:
    """``count`` active host-sourced SSL devices, each with a job due now (as the sensor would
    hand them out)."""
    inventory = base_inventory(database.engine)
    now = clock.now()
    ids = list(range(first_id, first_id + count))
    rows = host_device_rows(inventory, ids, host=host, port=port, now=now)
    insert_chunked(database.engine, DEVICES, rows)
    jobs = [
        {
            "device_id": i,
            "due_at": now,
            "interval_seconds": 3600,
            "reason": "benchmark",
            "claimed_by": None,
            "claimed_until": None,
        }
        for i in ids
    ]
    insert_chunked(database.engine, JOBS, jobs)
    if not database.is_sqlite:
        with database.engine.begin() as connection:
            connection.execute(sa.text("SELECT setval('devices_id_seq', :n)"), {"n": ids[-1]})
    return ids


async def refresh_all(services: Services, ids: Sequence[int], concurrency: int) -> None:
    results = await update_many(services, ids, author=AUTHOR, concurrency=concurrency)
    failed = [r for r in results if r.error is not None]
    if failed:
        first = failed[0]
        raise RuntimeError(f"{len(failed)} refreshes failed, e.g. {first.device_id}: {first.error}")


@asynccontextmanager
async def graphql_client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The API in this process (ASGI, no sockets), as the administrator."""
    transport = httpx.ASGITransport(app=create_app(services=services))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://dstrack.bench", headers=headers, timeout=None
    ) as http:
        yield http


async def force_through_graphql(http: httpx.AsyncClient, ids: Sequence[int]) -> None:
    """``forceUpdate`` in bulks of 100, one request after the other, as a person would."""
    for start in range(0, len(ids), BULK):
        gids = [encode_id("Device", i) for i in ids[start : start + BULK]]
        body = (
            await http.post("/graphql", json={"query": FORCE_UPDATE, "variables": {"ids": gids}})
        ).json()
        failed = [r for r in body["data"]["forceUpdate"]["results"] if r["errors"]]
        if "errors" in body or failed:
            raise RuntimeError(f"forceUpdate failed: {body.get('errors') or failed[0]}")


def profile_refresh(services: Services, ids: Sequence[int], concurrency: int) -> None:
    """cProfile of one steady refresh pass: where the client's time goes."""
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(refresh_all(services, ids, concurrency))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    say("  cProfile of a steady refresh pass, top 25 by own time:")
    for line in out.getvalue().splitlines():
        if line.strip():
            say("    " + line)


@dataclass
class Rates:
    bare: float
    first: float
    steady: float
    forced: float  # forceUpdate through the GraphQL API, bulks of 100
    system: float  # steady, resolved by getaddrinfo (the default: no DSTRACK_DNS_NAMESERVERS)
    cpu_ratio: float  # bare / steady client CPU per device


async def _run_rounds(
    database: Database, services: Services, system: Services, servers: LocalServers, size: int
) -> Rates:
    """The rates of each pass; bare, steady, forced and system-resolver passes alternate,
    medians compared. ``system`` resolves with ``getaddrinfo``: its devices are all named
    ``localhost`` (answered from /etc/hosts: the local DNS server's names are not known to
    the system), so it measures the resolver's own cost, not a DNS round trip."""
    ids = add_host_devices(database, servers.tls_port, size + 100)
    warm, ids = ids[:100], ids[100:]
    local = add_host_devices(
        database, servers.tls_port, size, first_id=ids[-1] + 1, host=lambda _: "localhost"
    )
    hosts = [device_host(i) for i in ids]
    async with graphql_client(services) as http:
        # Warm up every path (imports, trust roots, connection pool, server caches).
        await bare_handshakes(servers.tls_port, [device_host(i) for i in warm], CONCURRENCY)
        await refresh_all(services, warm, CONCURRENCY)
        await force_through_graphql(http, warm)
        await refresh_all(system, local, CONCURRENCY)  # their first audits

        first = await measure(
            "update_many, first audit (details + RAW file)",
            servers,
            size,
            lambda: refresh_all(services, ids, CONCURRENCY),
        )
        os.sync()  # the RAW files' writeback must not slow what follows
        phases: dict[str, list[Phase]] = {"bare": [], "steady": [], "forced": [], "system": []}
        passes = {
            "bare": (
                "bare asyncio TLS handshakes",
                lambda: bare_handshakes(servers.tls_port, hosts, CONCURRENCY),
            ),
            "steady": (
                "update_many, steady refresh (no changes)",
                lambda: refresh_all(services, ids, CONCURRENCY),
            ),
            "forced": (
                f"forceUpdate through GraphQL, bulks of {BULK}",
                lambda: force_through_graphql(http, ids),
            ),
            "system": (
                "update_many, steady, system resolver",
                lambda: refresh_all(system, local, CONCURRENCY),
            ),
        }
        for _ in range(ROUNDS):
            for key, (label, work) in passes.items():
                phases[key].append(await measure(label, servers, size, work))
    # Breakdown: the same work without the database, without decoding, without resolution,
    # look-ups sharing a c-ares channel as in update_many.
    sources = [HostSource(host=h, port=servers.tls_port) for h in hosts]
    with shared_channels():
        await _breakdown(services, servers, sources, size)

    def median_rate(key: str) -> float:
        return statistics.median(p.rate for p in phases[key])

    def median_cpu(key: str) -> float:
        return statistics.median(p.cpu_per_item for p in phases[key])

    return Rates(
        bare=median_rate("bare"),
        first=first.rate,
        steady=median_rate("steady"),
        forced=median_rate("forced"),
        system=median_rate("system"),
        cpu_ratio=median_cpu("bare") / median_cpu("steady"),
    )


async def _breakdown(
    services: Services, servers: LocalServers, sources: Sequence[HostSource], size: int
) -> None:
    probe = services.tls
    await measure(
        "  breakdown: probe, IP literal (no resolution)",
        servers,
        size,
        lambda: gated(
            CONCURRENCY, sources, lambda s: probe.fetch_chain(HostSource("127.0.0.1", s.port))
        ),  # type: ignore[attr-defined]
    )
    await measure(
        "  breakdown: probe (resolve + handshake + chain)",
        servers,
        size,
        lambda: gated(CONCURRENCY, sources, lambda s: probe.fetch_chain(s)),  # type: ignore[arg-type]
    )
    await measure(
        "  breakdown: probe + decode + verdicts (no database)",
        servers,
        size,
        lambda: gated(CONCURRENCY, sources, lambda s: retrieve_certificate(services, s)),  # type: ignore[arg-type]
    )


def run(*, quick: bool, postgres_url: str | None, profile: bool = False) -> list[Result]:
    heading("a. Refresh throughput: update_many vs bare TLS handshakes")
    size = 200 if quick else 1000
    say(f"{size} host-sourced SSL devices, concurrency {CONCURRENCY}, local TLS + DNS servers")
    results = []
    with local_servers() as servers, tempfile.TemporaryDirectory(prefix="dstrack-bench-") as tmp:
        for label, url in backends(postgres_url):
            say(f"-- {label}")
            with database_for(url, Path(tmp)) as database:
                data = Path(tmp) / f"data-{label}"
                services = bench_services(database, servers, data)
                system = bench_services(database, servers, data, system_resolver=True)
                rates = asyncio.run(_run_rounds(database, services, system, servers, size))
                if profile:
                    ids = [r for (r,) in _device_ids(database)][100:]
                    profile_refresh(services, ids, CONCURRENCY)
            say(
                f"  bare {rates.bare:.0f}/s; refresh {rates.steady:.0f}/s steady, "
                f"{rates.first:.0f}/s first audit, {rates.forced:.0f}/s forceUpdate, "
                f"{rates.system:.0f}/s system resolver; "
                f"by client CPU per device {rates.cpu_ratio:.2f}"
            )
            results += _results(label, size, rates)
    return results


def _results(label: str, size: int, rates: Rates) -> list[Result]:
    figures = {
        "bare": rates.bare,
        "steady": rates.steady,
        "first": rates.first,
        "forced": rates.forced,
        "system": rates.system,
        "cpu": rates.cpu_ratio,
    }
    measured = [
        ("refresh throughput", rates.steady, TARGET, f"by CPU per device {rates.cpu_ratio:.2f}"),
        ("first audit", rates.first, FIRST_AUDIT_TARGET, "details, RAW file, note, schedule"),
        ("forceUpdate through GraphQL", rates.forced, FORCED_TARGET, f"bulks of {BULK}"),
        (
            "refresh with the system resolver (the default)",
            rates.system,
            TARGET,
            "getaddrinfo from /etc/hosts; the line above resolves with c-ares",
        ),
    ]
    return [
        Result(
            name=f"{what} / bare handshakes ({label}, {size} devices)",
            ratio=rate / rates.bare,
            target=f">= {target}",
            passed=rate / rates.bare >= target,
            note=note,
            figures=figures,
        )
        for what, rate, target, note in measured
    ]


def _device_ids(database: Database) -> list[tuple[int]]:
    with database.engine.connect() as connection:
        return [(row[0],) for row in connection.execute(sa.select(DEVICES.c.id).order_by("id"))]
