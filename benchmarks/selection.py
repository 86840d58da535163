"""b. Due-device selection: the sensor's query as the inventory grows from 10k to 1M devices.

``tracking.refresh.jobs.due_device_ids(limit=200)`` is timed on SQLite and on PostgreSQL with 10k,
100k and 1M devices, bulk-inserted with SQLAlchemy core. The inventory looks like a steady
state with a backlog: 80% host-sourced SSL devices with an auto-updating job, 20% devices
without one (standard devices, inactive ones). Jobs are due at random times from 10 days ago
to 20 days ahead (a third due now - 267k rows at 1M, so a query that sorts every due row
shows), and the first 1,600 due jobs are held by refresh runs in flight (the sensor's
``MAX_PENDING_RUNS`` x ``BATCH_SIZE``), which the query has to skip.

Target: under 0.2 s per batch at every size, and flat: the 1M time at most
``FLAT_FACTOR`` times the 10k time. The query plan is printed to show the index is used.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.common import (
    DEVICES,
    JOBS,
    Database,
    Inventory,
    Result,
    backends,
    base_inventory,
    database_for,
    fast_bulk_load,
    heading,
    median_time,
    ms,
    say,
)
from tracking.core import clock
from tracking.refresh import jobs

BATCH = 200  # orchestration.sensors.BATCH_SIZE
IN_FLIGHT = 8 * BATCH  # MAX_PENDING_RUNS batches claimed and not finished
LIMIT_S = 0.2
FLAT_FACTOR = 2.0
CHUNK = 50_000
SEED = 7


def _rows(
    inventory: Inventory, start: int, stop: int, now: datetime, rng: random.Random
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Devices ``start..stop-1`` and their jobs, in chunks."""
    for chunk_start in range(start, stop, CHUNK):
        devices: list[dict[str, Any]] = []
        jobs_: list[dict[str, Any]] = []
        for i in range(chunk_start, min(stop, chunk_start + CHUNK)):
            kind = i % 10
            scheduled = kind < 8
            expires = now + timedelta(days=rng.uniform(-10, 400))
            devices.append(
                {
                    "id": i,
                    "category": "SSL_CERTIFICATE" if kind != 9 else "STANDARD",
                    "name": f"device {i}",
                    "description": None,
                    "active": kind != 8,
                    "organization_id": inventory.organization_id,
                    "contract_id": None,
                    "product_id": inventory.product_id,
                    "parent_id": None,
                    "ssl_source_kind": "HOST" if kind != 9 else None,
                    "ssl_host": f"h{i}.example.com" if kind != 9 else None,
                    "ssl_port": 443 if kind != 9 else None,
                    "ssl_pem": None,
                    "domain": None,
                    "expires_at": expires if kind != 9 else None,
                    "last_updated_at": now,
                    "last_update_error": None,
                    "created_at": now,
                    "modified_at": now,
                }
            )
            if scheduled:
                jobs_.append(
                    {
                        "device_id": i,
                        "due_at": now + timedelta(days=rng.uniform(-10, 20)),
                        "interval_seconds": 7 * 86_400,
                        "reason": "expires in more than 30 days",
                        "claimed_by": None,
                        "claimed_until": None,
                    }
                )
        yield devices, jobs_


def grow(database: Database, inventory: Inventory, have: int, want: int, now: datetime) -> None:
    rng = random.Random(SEED + have)
    for devices, jobs_ in _rows(inventory, have + 1, want + 1, now, rng):
        with database.engine.begin() as connection:
            connection.execute(DEVICES.insert(), devices)
            connection.execute(JOBS.insert(), jobs_)


def hold_in_flight(database: Database, now: datetime) -> None:
    """The first ``IN_FLIGHT`` due jobs are claimed by runs that have not finished."""
    with database.engine.begin() as connection:
        connection.execute(
            JOBS.update()
            .where(JOBS.c.claimed_by.is_not(None))
            .values(claimed_by=None, claimed_until=None)
        )
    held = jobs.due_device_ids(database.engine, now=now, limit=IN_FLIGHT)
    for start in range(0, len(held), BATCH):
        jobs.claim(
            database.engine,
            held[start : start + BATCH],
            claimed_by=f"run-{start // BATCH}",
            now=now,
            lease=timedelta(hours=1),
        )


def analyze(database: Database) -> None:
    """PostgreSQL: fresh statistics, as autovacuum keeps them on a live server."""
    if not database.is_sqlite:
        with database.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.exec_driver_sql("VACUUM ANALYZE devices")
            connection.exec_driver_sql("VACUUM ANALYZE update_jobs")


def captured_statement(database: Database, now: datetime) -> tuple[str, Any]:
    """The SQL ``due_device_ids`` sends, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(database.engine, "before_cursor_execute", record)
    try:
        jobs.due_device_ids(database.engine, now=now, limit=BATCH)
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", record)
    return seen[-1]


def query_plan(database: Database, now: datetime) -> list[str]:
    statement, parameters = captured_statement(database, now)
    prefix = "EXPLAIN QUERY PLAN " if database.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    with database.engine.connect() as connection:
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
    if database.is_sqlite:
        return [str(row[-1]) for row in rows]
    return [str(row[0]) for row in rows]


def measure(database: Database, sizes: list[int], repeat: int) -> dict[int, float]:
    inventory = base_inventory(database.engine)
    fast_bulk_load(database)
    now = clock.now()
    times: dict[int, float] = {}
    have = 0
    for size in sizes:
        loading = clock.now()
        grow(database, inventory, have, size, now)
        have = size
        analyze(database)
        hold_in_flight(database, now)
        loaded = (clock.now() - loading).total_seconds()
        picked = jobs.due_device_ids(database.engine, now=now, limit=BATCH)
        assert len(picked) == BATCH, "not enough due devices"
        times[size] = median_time(
            lambda: jobs.due_device_ids(database.engine, now=now, limit=BATCH), repeat=repeat
        )
        say(
            f"  {size:>9,} devices: {ms(times[size])} per batch of {BATCH} "
            f"(median of {repeat}; loaded in {loaded:.0f} s)"
        )
    say(f"  query plan at {have:,} devices:")
    for line in query_plan(database, now):
        say(f"    {line}")
    return times


def run(*, quick: bool, postgres_url: str | None) -> list[Result]:
    heading("b. Due-device selection: tracking.refresh.jobs.due_device_ids, batch of 200")
    sizes = [10_000, 30_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    results = []
    for label, url in backends(postgres_url):
        say(f"-- {label}")
        with (
            tempfile.TemporaryDirectory(prefix="dstrack-bench-") as tmp,
            database_for(url, Path(tmp)) as database,
        ):
            times = measure(database, sizes, repeat=5 if quick else 15)
        small, large = times[sizes[0]], times[sizes[-1]]
        ratio = large / small
        slowest = max(times.values())
        results.append(
            Result(
                name=f"due-device selection {sizes[-1]:,} / {sizes[0]:,} devices ({label})",
                ratio=ratio,
                target=f"<= {FLAT_FACTOR:g}, every batch < {LIMIT_S} s",
                passed=ratio <= FLAT_FACTOR and slowest < LIMIT_S,
                note=", ".join(f"{n:,}: {ms(t)}" for n, t in times.items()),
                figures={str(n): t for n, t in times.items()},
            )
        )
    return results
