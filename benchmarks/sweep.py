"""i. The expiry sweep: one batch of ``tracking.alerts.sweep`` as the inventory grows to 1M.

Each size's inventory looks like a steady state: certificates expiring from 30 days ago to 400
days ahead, each device's next expiry check where the sweep would have left it (the next
threshold crossing, in the future), 10% inactive and 5% muted devices whose checks are overdue
(the sweep must not even visit them), and a global channel, so every alert queues a delivery.
Then the same devices at every size - every 4th of the first 10,000 that is active and
unmuted, about 2,100 - get their check due now (and earlier alerts are cleared, so each size
does the same work), and batches of ``BATCH`` are swept one after another - each reads its
devices along the index, their expiry alerts, raises and queues, and moves the devices' next
checks - each in its own transaction. The same rows at every size: what grows is only the
inventory around them, which is what a flat sweep must not feel.

Target: under 1 s per batch at every size, and flat: the 1M time at most ``FLAT_FACTOR`` times
the 10k time. The due-device query's plan is printed to show the index is used.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.common import (
    DEVICES,
    Database,
    Inventory,
    Result,
    backends,
    base_inventory,
    database_for,
    fast_bulk_load,
    heading,
    ms,
    say,
)
from models.alerts import GLOBAL_SCOPE
from models.db import reader
from tracking.alerts import load_book
from tracking.alerts.sweep import due_devices, sweep_batch
from tracking.alerts.tables import ALERTS, CHANNELS, DELIVERIES, POLICIES, POLICY_CHANNELS
from tracking.core import clock
from tracking.core.alert_rules import DEFAULT_THRESHOLDS_DAYS, next_expiry_check

BATCH = 500  # tracking.alerts.sweep.BATCH_SIZE
DUE_AMONG = 10_000  # the due devices are among the first ids ...
DUE_EVERY = 4  # ... every 4th of them
LIMIT_S = 1.0
FLAT_FACTOR = 2.0
CHUNK = 50_000
SEED = 11


def _rows(
    inventory: Inventory, start: int, stop: int, now: datetime, rng: random.Random
) -> Iterator[list[dict[str, Any]]]:
    for chunk_start in range(start, stop, CHUNK):
        rows: list[dict[str, Any]] = []
        for i in range(chunk_start, min(stop, chunk_start + CHUNK)):
            kind = i % 20
            expires = now + timedelta(days=rng.uniform(-30, 400))
            due = next_expiry_check(expires, now, DEFAULT_THRESHOLDS_DAYS)
            if kind in (0, 1, 2):  # inactive or muted, checks overdue: never visited
                due = now - timedelta(days=rng.uniform(0, 30))
            rows.append(
                {
                    "id": i,
                    "category": "SSL_CERTIFICATE",
                    "name": f"device {i}",
                    "description": None,
                    "active": kind not in (0, 1),
                    "alerts_muted": kind == 2,
                    "organization_id": inventory.organization_id,
                    "contract_id": None,
                    "product_id": inventory.product_id,
                    "parent_id": None,
                    "ssl_source_kind": "PEM",
                    "ssl_host": None,
                    "ssl_port": None,
                    "ssl_pem": None,
                    "domain": None,
                    "expires_at": expires,
                    "expiry_alert_due_at": due,
                    "last_updated_at": now,
                    "last_update_error": None,
                    "consecutive_failures": 0,
                    "created_at": now,
                    "modified_at": now,
                }
            )
        yield rows


def grow(database: Database, inventory: Inventory, have: int, want: int, now: datetime) -> None:
    rng = random.Random(SEED + have)
    for rows in _rows(inventory, have + 1, want + 1, now, rng):
        with database.engine.begin() as connection:
            connection.execute(DEVICES.insert(), rows)


def global_channel(database: Database, now: datetime) -> None:
    with database.engine.begin() as connection:
        channel = connection.execute(
            CHANNELS.insert()
            .values(
                name="ops",
                kind="WEBHOOK",
                target="https://hooks.example.com/x",
                secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                enabled=True,
                created_at=now,
            )
            .returning(CHANNELS.c.id)
        ).scalar_one()
        policy = connection.execute(
            POLICIES.insert()
            .values(
                scope=GLOBAL_SCOPE,
                expiry_thresholds_days=list(DEFAULT_THRESHOLDS_DAYS),
                notify_on_change=True,
                failures_before_alert=3,
                updated_at=now,
            )
            .returning(POLICIES.c.id)
        ).scalar_one()
        connection.execute(POLICY_CHANNELS.insert().values(policy_id=policy, channel_id=channel))


def make_due(database: Database, now: datetime) -> None:
    """The same active, unmuted devices at every size are due for a check now, with no alert
    raised yet."""
    with database.engine.begin() as connection:
        connection.execute(DELIVERIES.delete())
        connection.execute(ALERTS.delete())
        connection.execute(
            DEVICES.update()
            .where(
                DEVICES.c.id <= DUE_AMONG,
                sa.text(f"id % {DUE_EVERY} = 0"),
                DEVICES.c.active == sa.true(),
                DEVICES.c.alerts_muted == sa.false(),
            )
            .values(expiry_alert_due_at=now - timedelta(minutes=1))
        )


def analyze(database: Database) -> None:
    if not database.is_sqlite:
        with database.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.exec_driver_sql("VACUUM ANALYZE devices")
            connection.exec_driver_sql("VACUUM ANALYZE alerts")


def query_plan(database: Database, now: datetime) -> list[str]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(database.engine, "before_cursor_execute", record)
    try:
        with reader(database.engine) as session:
            due_devices(session, now=now, limit=BATCH)
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", record)
    statement, parameters = seen[-1]
    prefix = "EXPLAIN QUERY PLAN " if database.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    with database.engine.connect() as connection:
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
    return [str(row[-1]) if database.is_sqlite else str(row[0]) for row in rows]


def measure(database: Database, sizes: list[int]) -> dict[int, float]:
    inventory = base_inventory(database.engine)
    fast_bulk_load(database)
    now = clock.now()
    global_channel(database, now)
    times: dict[int, float] = {}
    have = 0
    for size in sizes:
        loading = time.perf_counter()
        grow(database, inventory, have, size, now)
        have = size
        make_due(database, now)
        analyze(database)
        loaded = time.perf_counter() - loading
        with reader(database.engine) as session:
            book = load_book(session)
        batches: list[float] = []
        raised = 0
        while True:
            started = time.perf_counter()
            report, _ = sweep_batch(database.engine, book, now=now, limit=BATCH)
            raised += report.raised
            if report.looked_at < BATCH:  # the last, partial batch is not timed
                break
            batches.append(time.perf_counter() - started)
        assert len(batches) >= 4, "not enough due devices"
        times[size] = sorted(batches)[len(batches) // 2]
        say(
            f"  {size:>9,} devices: {ms(times[size])} per batch of {BATCH} (median of "
            f"{len(batches)}, slowest {ms(max(batches))}; {raised:,} alerts raised; "
            f"loaded in {loaded:.0f} s)"
        )
    say(f"  due-device query plan at {have:,} devices:")
    for line in query_plan(database, now + timedelta(days=1)):
        say(f"    {line}")
    return times


def run(*, quick: bool, postgres_url: str | None) -> list[Result]:
    heading("i. Expiry sweep: tracking.alerts.sweep, batch of 500")
    sizes = [10_000, 30_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    results = []
    for label, url in backends(postgres_url):
        say(f"-- {label}")
        with (
            tempfile.TemporaryDirectory(prefix="dstrack-bench-") as tmp,
            database_for(url, Path(tmp)) as database,
        ):
            times = measure(database, sizes)
        small, large = times[sizes[0]], times[sizes[-1]]
        ratio = large / small
        slowest = max(times.values())
        results.append(
            Result(
                name=f"expiry sweep {sizes[-1]:,} / {sizes[0]:,} devices ({label})",
                ratio=ratio,
                target=f"<= {FLAT_FACTOR:g}, every batch < {LIMIT_S:g} s",
                passed=ratio <= FLAT_FACTOR and slowest < LIMIT_S,
                note=", ".join(f"{n:,}: {ms(t)}" for n, t in times.items()),
                figures={str(n): t for n, t in times.items()},
            )
        )
    return results
