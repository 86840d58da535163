"""g. CSV import throughput: host rows imported per second, versus bare TLS handshakes.

A CSV file of N host rows (``d<i>.bench.test:<port>``, SSL_CERTIFICATE, one organization) is
imported with ``tracking.manage.imports.import_csv`` - the ``importDevices`` mutation's use
case: reading the CSV, the checks without network (organization, source syntax, existing
devices), then per row ``create_device`` as ``createDevice`` runs it (resolution through c-ares
against a local DNS server, TLS handshake with SNI, chain, decoding, verdicts, one transaction:
device, Activity notes, SSL Details, RAW file, job), 16 rows in flight. Every row is a first
audit: each round imports hosts no earlier round has seen.

The baseline is the bare asyncio TLS handshake (benchmark a's) against the same server, at the
same concurrency, alternating with the imports; the medians are compared.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from benchmarks.common import (
    Database,
    Result,
    backends,
    base_inventory,
    database_for,
    heading,
    say,
)
from benchmarks.refresh import Phase, bare_handshakes, bench_services, measure
from benchmarks.servers import LocalServers, device_host, local_servers
from models import SecurityLevel
from models.db import reader
from tracking.manage import access, devices, imports, inventory
from tracking.manage.access import Viewer
from tracking.refresh.services import Services

TARGET = 0.25
ROUNDS = 3
WARMUP = 100


def admin_viewer(database: Database) -> Viewer:
    inventory.ensure_system_data(database.engine)
    user = access.ensure_admin_user(database.engine)
    with reader(database.engine) as session:
        level = session.get(SecurityLevel, user.security_level_id)
    assert level is not None
    return access.viewer_for(user, level)


def host_rows(port: int, numbers: range) -> str:
    rows = "".join(
        f"Benchmark Customer 0,SSL_CERTIFICATE,{device_host(i)}:{port}\n" for i in numbers
    )
    return "organization,category,source\n" + rows


async def import_all(services: Services, viewer: Viewer, text: str, expected: int) -> None:
    report = await imports.import_csv(services, viewer=viewer, text=text)
    if report.created != expected:
        first = report.errors[0] if report.errors else None
        raise RuntimeError(f"{report.created} of {expected} rows created; e.g. {first}")


async def _rounds(
    services: Services, viewer: Viewer, servers: LocalServers, size: int, profile: bool
) -> tuple[float, float, float]:
    """(median bare rate, median import rate, client CPU ratio bare / import per row)."""
    port = servers.tls_port
    warm = range(1, WARMUP + 1)
    await bare_handshakes(port, [device_host(i) for i in warm], devices.CONCURRENCY)
    await import_all(services, viewer, host_rows(port, warm), WARMUP)
    bare: list[Phase] = []
    imported: list[Phase] = []
    for number in range(ROUNDS):
        first = WARMUP + 1 + number * size
        numbers = range(first, first + size)
        hosts = [device_host(i) for i in numbers]
        text = host_rows(port, numbers)
        bare.append(
            await measure(
                "bare asyncio TLS handshakes",
                servers,
                size,
                lambda hosts=hosts: bare_handshakes(port, hosts, devices.CONCURRENCY),
            )
        )
        imported.append(
            await measure(
                "import_csv, first audit of every row",
                servers,
                size,
                lambda text=text: import_all(services, viewer, text, size),
            )
        )
        os.sync()  # the RAW files' writeback must not slow the next round
    if profile:
        first = WARMUP + 1 + ROUNDS * size
        text = host_rows(port, range(first, first + size))
        profiler = cProfile.Profile()
        profiler.enable()
        await import_all(services, viewer, text, size)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        say("  cProfile of an import, top 25 by own time:")
        for line in out.getvalue().splitlines():
            if line.strip():
                say("    " + line)
    return (
        statistics.median(p.rate for p in bare),
        statistics.median(p.rate for p in imported),
        statistics.median(p.cpu_per_item for p in bare)
        / statistics.median(p.cpu_per_item for p in imported),
    )


def run(*, quick: bool, postgres_url: str | None, profile: bool = False) -> list[Result]:
    heading("g. CSV import throughput: import_csv vs bare TLS handshakes")
    size = 200 if quick else 1000
    say(f"{size} host rows a round, {devices.CONCURRENCY} in flight, local TLS + DNS servers")
    results = []
    with local_servers() as servers, tempfile.TemporaryDirectory(prefix="dstrack-bench-") as tmp:
        for label, url in backends(postgres_url):
            say(f"-- {label}")
            with database_for(url, Path(tmp)) as database:
                base_inventory(database.engine)
                services = bench_services(database, servers, Path(tmp) / f"data-{label}")
                # Thousands of rows, one user: above the default retrieval budget.
                services.settings = replace(services.settings, retrievals_per_10_min=10**9)
                viewer = admin_viewer(database)
                bare, rate, cpu_ratio = asyncio.run(
                    _rounds(services, viewer, servers, size, profile)
                )
            ratio = rate / bare
            say(
                f"  bare {bare:.0f}/s; import {rate:.0f} rows/s; ratio {ratio:.2f}; "
                f"by client CPU per row {cpu_ratio:.2f}"
            )
            results.append(
                Result(
                    name=f"CSV import / bare handshakes ({label}, {size} host rows)",
                    ratio=ratio,
                    target=f">= {TARGET}",
                    passed=ratio >= TARGET,
                    note=f"by CPU per row {cpu_ratio:.2f}",
                    figures={"bare": bare, "import": rate, "cpu": cpu_ratio},
                )
            )
    return results
