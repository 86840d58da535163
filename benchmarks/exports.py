"""h. CSV export: 100,000 devices streamed in bounded memory, one query per batch.

100,000 SSL Certificate devices with their SSL Details (one organization holds 10,000 of them)
are bulk-inserted, then exported with ``tracking.manage.exports.DeviceExport`` - what
``GET /export/devices.csv`` and ``dstrack export`` stream - into a sink that only counts bytes.

* **Memory**: the peak of Python allocations (``tracemalloc``) while exporting all 100,000
  devices, against the peak while exporting the 10,000 of one organization: a streamed export
  holds one batch at a time, so the two peaks are about the same, and both stay under
  ``BOUND_MB``. The process's peak RSS growth is printed too.
* **Statements**: SQL statements sent per batch of ``BATCH_SIZE`` devices (target: 1).
* **Time**: the export against the bare keyset query of the same columns in the same run
  (reading the rows without writing CSV), for information.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.common import (
    DEVICES,
    ORGANIZATIONS,
    SSL_DETAILS,
    Database,
    Result,
    backends,
    base_inventory,
    database_for,
    fast_bulk_load,
    heading,
    host_device_rows,
    insert_chunked,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
    say,
)
from benchmarks.imports import admin_viewer
from benchmarks.servers import device_host
from tracking.core import clock
from tracking.core.ids import encode_id
from tracking.manage import exports
from tracking.manage.access import Viewer

BOUND_MB = 16.0
FLAT = 1.5  # peak(all) / peak(one organization of a tenth) at most
BATCH_SIZE = exports.BATCH_SIZE


def load(database: Database, total: int, small: int) -> int:
    """``total`` devices with SSL Details, ``small`` of them in a second organization (whose
    primary key is returned)."""
    fast_bulk_load(database)
    inventory = base_inventory(database.engine, organizations=2)
    small_org = inventory.organization_id + 1
    now = clock.now()
    ids = list(range(1, total + 1))
    devices = host_device_rows(inventory, ids, host=device_host, port=443, now=now)
    for row in devices[:small]:
        row["organization_id"] = small_org
    for row in devices:
        row["expires_at"] = now + timedelta(days=row["id"] % 400 - 30)
        row["last_updated_at"] = now
    insert_chunked(database.engine, DEVICES, devices)
    details = [
        {
            "device_id": i,
            "common_name": device_host(i),
            "valid_from": now - timedelta(days=30),
            "valid_until": now + timedelta(days=i % 400 - 30),
            "issued_by": "dstrack Benchmark Intermediate CA",
            "organization": None,
            "organizational_unit": None,
            "location": None,
            "serial_number": f"{i:032X}",
            "signature_algorithm": "sha256ECDSA",
            "subject_alternative_names": [device_host(i)],
            "fingerprint_sha256": ":".join(["AB"] * 32),
            "key_type": "EC",
            "key_size": 256,
            "chain_pem": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
            "chain_length": 2,
            "trusted": True,
            "trust_error": None,
            "hostname_matches": True,
            "address": "127.0.0.1",
            "protocol": "TLSv1.3",
            "retrieved_at": now,
        }
        for i in ids
    ]
    insert_chunked(database.engine, SSL_DETAILS, details)
    if not database.is_sqlite:
        with database.engine.begin() as connection:
            connection.execute(sa.text("SELECT setval('devices_id_seq', :n)"), {"n": total})
            connection.execute(sa.text("ANALYZE"))
    with database.engine.connect() as connection:
        found = connection.execute(sa.select(sa.func.count()).select_from(ORGANIZATIONS))
        assert found.scalar_one() == 2
    return small_org


def export_bytes(database: Database, viewer: Viewer, **params: str) -> tuple[int, int]:
    """(bytes, rows) of an export, written nowhere."""
    filters = exports.export_filter(database.engine, viewer, params)
    export = exports.DeviceExport(database.engine, viewer, filters)
    size = sum(len(chunk) for chunk in export.chunks())
    return size, export.rows


def traced_peak_mb(database: Database, viewer: Viewer, **params: str) -> float:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        export_bytes(database, viewer, **params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - base) / 1024 / 1024


@contextmanager
def counting(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", record)


def bare_keyset(database: Database, viewer: Viewer) -> int:
    """The baseline: the same query, batch by batch, rows read and dropped."""
    export = exports.DeviceExport(database.engine, viewer, exports.ExportFilter())
    now = clock.now()
    after, rows = 0, 0
    while True:
        with database.engine.connect() as connection:
            batch = connection.execute(export._query(now, after)).all()[:BATCH_SIZE]
        if not batch:
            return rows
        rows += len(batch)
        after = batch[-1].id


def measure(database: Database, total: int, small: int) -> list[Result]:
    viewer = admin_viewer(database)
    small_org = load(database, total, small)
    one_org = {"organizationId": encode_id("Organization", small_org)}
    export_bytes(database, viewer, **one_org)  # warm up (imports, statement cache)
    reset_peak_rss()
    rss_before = rss_mb()
    with counting(database) as statements:
        size, rows = export_bytes(database, viewer)
    rss_growth = peak_rss_mb() - rss_before
    peak_small = traced_peak_mb(database, viewer, **one_org)
    peak_all = traced_peak_mb(database, viewer)
    batches = -(-rows // BATCH_SIZE)
    per_batch = len(statements) / batches
    timings, bare = [], []
    for _ in range(3):
        started = time.perf_counter()
        export_bytes(database, viewer)
        timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        bare_keyset(database, viewer)
        bare.append(time.perf_counter() - started)
    took, bare_took = statistics.median(timings), statistics.median(bare)
    say(
        f"  {rows:,} devices, {size / 1024 / 1024:.1f} MB of CSV in {took:.2f} s "
        f"({rows / took:,.0f} devices/s; the bare keyset query alone {bare_took:.2f} s, "
        f"{took / bare_took:.1f}x)"
    )
    say(
        f"  traced peak: {peak_all:.2f} MB for {rows:,} devices, {peak_small:.2f} MB for "
        f"{small:,}; peak RSS growth {rss_growth:.1f} MB"
    )
    say(f"  {len(statements)} statements for {batches} batches of {BATCH_SIZE}")
    ratio = peak_all / peak_small
    label = database.label
    return [
        Result(
            name=f"export memory peak, {rows:,} / {small:,} devices ({label})",
            ratio=ratio,
            target=f"<= {FLAT}, peak < {BOUND_MB:.0f} MB",
            passed=ratio <= FLAT and peak_all < BOUND_MB,
            note=f"peak {peak_all:.1f} MB traced, RSS +{rss_growth:.1f} MB",
            figures={"peak_all": peak_all, "peak_small": peak_small, "rss": rss_growth},
        ),
        Result(
            name=f"export statements per batch of {BATCH_SIZE} ({label})",
            ratio=per_batch,
            target="== 1",
            passed=per_batch == 1,
            note=f"{took / bare_took:.1f}x the bare keyset query, {rows / took:,.0f} devices/s",
            figures={"per_batch": per_batch, "seconds": took, "bare": bare_took},
        ),
    ]


def run(*, quick: bool, postgres_url: str | None) -> list[Result]:
    total = 20_000 if quick else 100_000
    small = total // 10
    heading(f"h. CSV export: {total:,} devices streamed in batches of {BATCH_SIZE}")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="dstrack-bench-") as tmp:
        for label, url in backends(postgres_url):
            say(f"-- {label}")
            with database_for(url, Path(tmp)) as database:
                results += measure(database, total, small)
    return results
