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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from benchmarks.common import (
    DEVICES,
    JOBS,
    Database,
    Result,
    base_inventory,
    cpu_seconds,
    heading,
    host_device_rows,
    insert_chunked,
    postgres_cpu_seconds,
    postgres_database,
    say,
    sqlite_database,
)
from benchmarks.servers import LocalServers, bench_chain, device_host, local_servers
from tracking.core import clock
from tracking.core.settings import Nameserver, Settings
from tracking.core.sources import HostSource
from tracking.probes.ares import shared_channels
from tracking.probes.tls import permissive_client_context
from tracking.refresh.certificate import retrieve_certificate
from tracking.refresh.pipeline import update_many
from tracking.refresh.services import Services
from tracking.wiring import build_services

TARGET = 0.5
CONCURRENCY = 16  # orchestration.refresh.DEFAULT_CONCURRENCY
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


def bench_services(database: Database, servers: LocalServers, data_dir: Path) -> Services:
    """Services as a deployment builds them: the system trust store plus the benchmark root
    given as ``DSTRACK_CA_BUNDLE``, DNS through the configured (local) nameserver."""
    data_dir.mkdir(parents=True, exist_ok=True)
    bundle = data_dir / "bench-root.pem"
    bundle.write_bytes(bench_chain().root.public_bytes(serialization.Encoding.PEM))
    settings = Settings(
        database_url=database.url,
        data_dir=data_dir,
        dns_nameservers=(Nameserver("127.0.0.1", servers.dns_port),),
        allow_private_targets=True,
        probe_timeout_s=30.0,
        ca_bundle=bundle,
    )
    return build_services(settings, database.engine)


def add_host_devices(database: Database, port: int, count: int, *, first_id: int = 1) -> list[int]:
    """``count`` active host-sourced SSL devices, each with a job due now (as the sensor would
    hand them out)."""
    inventory = base_inventory(database.engine)
    now = clock.now()
    ids = list(range(first_id, first_id + count))
    rows = host_device_rows(inventory, ids, host=device_host, port=port, now=now)
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


async def _run_rounds(
    database: Database, services: Services, servers: LocalServers, size: int
) -> tuple[float, float, float, float]:
    """(bare rate, first-audit rate, steady rate, CPU ratio: bare / steady CPU per device)."""
    ids = add_host_devices(database, servers.tls_port, size + 100)
    warm, ids = ids[:100], ids[100:]
    hosts = [device_host(i) for i in ids]
    # Warm up both paths (imports, trust roots, connection pool, server caches).
    await bare_handshakes(servers.tls_port, [device_host(i) for i in warm], CONCURRENCY)
    await refresh_all(services, warm, CONCURRENCY)

    async def bare() -> Phase:
        return await measure(
            "bare asyncio TLS handshakes",
            servers,
            size,
            lambda: bare_handshakes(servers.tls_port, hosts, CONCURRENCY),
        )

    async def steady() -> Phase:
        return await measure(
            "update_many, steady refresh (no changes)",
            servers,
            size,
            lambda: refresh_all(services, ids, CONCURRENCY),
        )

    first = await measure(
        "update_many, first audit (details + RAW file)",
        servers,
        size,
        lambda: refresh_all(services, ids, CONCURRENCY),
    )
    os.sync()  # the RAW files' writeback must not slow what follows
    bare_phases: list[Phase] = []
    steady_phases: list[Phase] = []
    for _ in range(ROUNDS):
        bare_phases.append(await bare())
        steady_phases.append(await steady())
    # Breakdown: the same work without the database, without decoding, without resolution,
    # look-ups sharing a c-ares channel as in update_many.
    sources = [HostSource(host=h, port=servers.tls_port) for h in hosts]
    with shared_channels():
        await _breakdown(services, servers, sources, size)
    return (
        statistics.median(p.rate for p in bare_phases),
        first.rate,
        statistics.median(p.rate for p in steady_phases),
        statistics.median(p.cpu_per_item for p in bare_phases)
        / statistics.median(p.cpu_per_item for p in steady_phases),
    )


async def _breakdown(
    services: Services, servers: LocalServers, sources: Sequence[HostSource], size: int
) -> None:
    probe = services.tls
    await measure(
        "  breakdown: probe, IP literal (no resolution)",
        servers,
        size,
        lambda: gated(CONCURRENCY, sources, lambda s: probe.fetch_chain("127.0.0.1", s.port)),  # type: ignore[attr-defined]
    )
    await measure(
        "  breakdown: probe (resolve + handshake + chain)",
        servers,
        size,
        lambda: gated(CONCURRENCY, sources, lambda s: probe.fetch_chain(s.host, s.port)),  # type: ignore[attr-defined]
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
    backends = [("SQLite", None)] + ([("PostgreSQL", postgres_url)] if postgres_url else [])
    with local_servers() as servers, tempfile.TemporaryDirectory(prefix="dstrack-bench-") as tmp:
        for label, url in backends:
            say(f"-- {label}")
            with sqlite_database(Path(tmp)) if url is None else postgres_database(url) as database:
                services = bench_services(database, servers, Path(tmp) / f"data-{label}")
                bare, first, steady, cpu_ratio = asyncio.run(
                    _run_rounds(database, services, servers, size)
                )
                if profile:
                    ids = [r for (r,) in _device_ids(database)][100:]
                    profile_refresh(services, ids, CONCURRENCY)
            ratio = steady / bare
            say(
                f"  bare {bare:.0f}/s; refresh {steady:.0f}/s steady, {first:.0f}/s first audit; "
                f"ratio steady {ratio:.2f}, first audit {first / bare:.2f}; "
                f"by client CPU per device {cpu_ratio:.2f}"
            )
            results.append(
                Result(
                    name=f"refresh throughput / bare handshakes ({label}, {size} devices)",
                    ratio=ratio,
                    target=f">= {TARGET}",
                    passed=ratio >= TARGET,
                    note=f"first audit {first / bare:.2f}, by CPU per device {cpu_ratio:.2f}",
                    figures={"bare": bare, "steady": steady, "first": first, "cpu": cpu_ratio},
                )
            )
    return results


def _device_ids(database: Database) -> list[tuple[int]]:
    with database.engine.connect() as connection:
        return [(row[0],) for row in connection.execute(sa.select(DEVICES.c.id).order_by("id"))]
