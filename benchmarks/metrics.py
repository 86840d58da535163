"""j. ``GET /metrics`` for 10,000 and 100,000 active devices: time and memory.

The inventory: 80% SSL Certificate devices (host sources, each with SSL details), 15% Domain
devices (each with registration details), 5% inactive devices (not exported), in 20
organizations, bulk-inserted with SQLAlchemy Core. The exposition is rendered as the API
streams it (``MetricsCollector.exposition``, the same bytes the route sends), on SQLite
and PostgreSQL, and its wall time and the peak memory allocated while rendering
(``tracemalloc``, measured in a separate pass since tracing slows Python down) are reported.

Target: under 2 s at 100,000 devices, and memory bounded: the peak at 100,000 devices at most
``MEMORY_FACTOR`` times the peak at 10,000 (a renderer that held the whole text would grow 10x).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from benchmarks.common import (
    DEVICES,
    ORGANIZATIONS,
    PRODUCTS,
    SSL_DETAILS,
    Database,
    Result,
    backends,
    cpu_seconds,
    database_for,
    fast_bulk_load,
    heading,
    peak_rss_mb,
    postgres_cpu_seconds,
    reset_peak_rss,
    rss_mb,
    say,
)
from models import DomainDetailsRecord
from tracking.core import clock
from tracking.metrics import MetricsCollector

DOMAIN_DETAILS: sa.Table = DomainDetailsRecord.__table__  # type: ignore[attr-defined]

LIMIT_S = 2.0
MEMORY_FACTOR = 2.0
ORGANIZATION_COUNT = 20
CHUNK = 20_000
SEED = 11


def _device(i: int, now: datetime, rng: random.Random) -> dict[str, Any]:
    kind = i % 20
    domain = kind in (1, 2, 3)
    return {
        "id": i,
        "category": "DOMAIN" if domain else "SSL_CERTIFICATE",
        "name": f"example{i}.com" if domain else f"www{i}.example.com",
        "description": None,
        "active": kind != 0,
        "organization_id": i % ORGANIZATION_COUNT + 1,
        "contract_id": None,
        "product_id": 1,
        "parent_id": None,
        "ssl_source_kind": None if domain else "HOST",
        "ssl_host": None if domain else f"www{i}.example.com",
        "ssl_port": None if domain else 443,
        "ssl_pem": None,
        "domain": f"example{i}.com" if domain else None,
        "expires_at": now + timedelta(days=rng.uniform(-5, 400)),
        "last_updated_at": now - timedelta(hours=rng.uniform(0, 48)),
        "last_update_error": None,
        "consecutive_failures": 1 if kind == 7 else 0,
        "created_at": now,
        "modified_at": now,
    }


def _ssl_details(device: dict[str, Any], now: datetime) -> dict[str, Any]:
    host = device["ssl_host"]
    return {
        "device_id": device["id"],
        "common_name": host,
        "valid_from": now - timedelta(days=30),
        "valid_until": device["expires_at"],
        "issued_by": "Benchmark Issuing CA R3",
        "organization": None,
        "organizational_unit": None,
        "location": None,
        "serial_number": "01",
        "signature_algorithm": "sha256WithRSAEncryption",
        "subject_alternative_names": [host],
        "fingerprint_sha256": "00",
        "key_type": "RSA",
        "key_size": 2048,
        "chain_pem": "(not read by the metrics)",
        "chain_length": 2,
        "trusted": device["id"] % 50 != 0,
        "trust_error": None,
        "hostname_matches": device["id"] % 70 != 0,
        "address": "192.0.2.10",
        "protocol": "TLSv1.3",
        "retrieved_at": now,
    }


def _domain_details(device: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "device_id": device["id"],
        "registrar": f"Registrar {device['id'] % 7}",
        "registrant_organization": None,
        "created_at": now - timedelta(days=3000),
        "updated_at": now,
        "expires_at": device["expires_at"],
        "name_servers": [],
        "statuses": [],
        "dnssec": None,
        "source": "RDAP",
        "dns_records": [],
        "registered": True,
        "registration_error": None,
        "dns_error": None,
        "retrieved_at": now,
    }


def _chunks(start: int, stop: int, now: datetime) -> Iterator[tuple[list[Any], ...]]:
    rng = random.Random(SEED + start)
    for chunk_start in range(start, stop, CHUNK):
        devices = [_device(i, now, rng) for i in range(chunk_start, min(stop, chunk_start + CHUNK))]
        ssl = [_ssl_details(d, now) for d in devices if d["category"] == "SSL_CERTIFICATE"]
        domains = [_domain_details(d, now) for d in devices if d["category"] == "DOMAIN"]
        yield devices, ssl, domains


def base(database: Database) -> None:
    now = clock.now()
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


def grow(database: Database, have: int, want: int) -> None:
    """Devices ``have + 1`` to ``want``, with their details."""
    now = clock.now()
    for devices, ssl, domains in _chunks(have + 1, want + 1, now):
        with database.engine.begin() as connection:
            connection.execute(DEVICES.insert(), devices)
            connection.execute(SSL_DETAILS.insert(), ssl)
            connection.execute(DOMAIN_DETAILS.insert(), domains)
    if not database.is_sqlite:
        with database.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            for table in ("devices", "ssl_details", "domain_details", "organizations"):
                connection.exec_driver_sql(f"VACUUM ANALYZE {table}")


def _render(database: Database) -> int:
    collector = MetricsCollector(database.engine)
    return sum(len(chunk) for chunk in collector.exposition().chunks())


def _timed(database: Database, repeat: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds of a whole exposition, and its size in bytes. The CPU time
    is this process's plus, on PostgreSQL, the server's: on a shared machine the wall time
    mostly says how long the process waited for a core."""
    size = _render(database)  # warm-up: caches, the first connection
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), _cpu(database)
        _render(database)
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu(database) - cpu)
    return statistics.median(walls), statistics.median(cpus), size


def _cpu(database: Database) -> float:
    return cpu_seconds() + (0.0 if database.is_sqlite else postgres_cpu_seconds())


def _peak_mb(render: Callable[[], object]) -> float:
    """Peak memory Python allocated while ``render`` ran (tracemalloc), in MB."""
    tracemalloc.start()
    try:
        render()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def _generate_latest(database: Database) -> tuple[float, float]:
    """For comparison, the whole registry through ``generate_latest`` (every sample held):
    its wall time and the growth of the process's peak RSS."""
    registry = CollectorRegistry()
    registry.register(MetricsCollector(database.engine))
    reset_peak_rss()
    before = rss_mb()
    started = time.perf_counter()
    generate_latest(registry)
    return time.perf_counter() - started, peak_rss_mb() - before


def measure(database: Database, sizes: list[int], repeat: int) -> dict[int, tuple[float, ...]]:
    base(database)
    fast_bulk_load(database)
    figures: dict[int, tuple[float, ...]] = {}
    have = 0
    for size in sizes:
        grow(database, have, size)
        have = size
        wall, cpu, length = _timed(database, repeat)
        peak = _peak_mb(lambda: _render(database))
        plain_s, plain = _generate_latest(database)
        figures[size] = (wall, cpu, peak, plain_s, plain)
        say(
            f"  {size:>7,} devices ({length / 1e6:.1f} MB of text): {wall:.2f} s "
            f"(CPU {cpu:.2f} s, load {os.getloadavg()[0]:.1f}), "
            f"peak {peak:.1f} MB allocated while rendering; "
            f"generate_latest over the whole registry: {plain_s:.1f} s, "
            f"peak RSS +{plain:.0f} MB"
        )
    return figures


def run(*, quick: bool, postgres_url: str | None) -> list[Result]:
    heading("j. GET /metrics: the exposition of every active device")
    sizes = [10_000, 100_000]
    results = []
    for label, url in backends(postgres_url):
        say(f"-- {label}")
        with (
            tempfile.TemporaryDirectory(prefix="dstrack-bench-") as tmp,
            database_for(url, Path(tmp)) as database,
        ):
            figures = measure(database, sizes, repeat=1 if quick else 3)
        small, large = figures[sizes[0]], figures[sizes[-1]]
        growth = large[2] / small[2]
        results.append(
            Result(
                name=f"/metrics at {sizes[-1]:,} devices, seconds ({label})",
                ratio=large[0],
                target=f"< {LIMIT_S:g} s, peak memory at 100k <= {MEMORY_FACTOR:g}x at 10k",
                passed=large[0] < LIMIT_S and growth <= MEMORY_FACTOR,
                note=f"CPU {large[1]:.2f} s; peak {small[2]:.1f} MB at 10k, {large[2]:.1f} MB "
                f"at 100k; generate_latest: {large[3]:.1f} s, RSS +{large[4]:.0f} MB",
                figures={"wall": large[0], "cpu": large[1], "peak_mb": large[2]},
            )
        )
    return results
