"""What the benchmarks share: results, timing, databases and bulk-inserted inventories."""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

import models  # noqa: F401  (registers the tables)
from models import Device, Organization, Product, SslDetailsRecord, UpdateJob
from models.db import create_engine, migrate
from tracking.core import clock

REPO = Path(__file__).resolve().parent.parent

DEVICES = Device.__table__  # type: ignore[attr-defined]
JOBS = UpdateJob.__table__  # type: ignore[attr-defined]
ORGANIZATIONS = Organization.__table__  # type: ignore[attr-defined]
PRODUCTS = Product.__table__  # type: ignore[attr-defined]
SSL_DETAILS = SslDetailsRecord.__table__  # type: ignore[attr-defined]


# --- results -----------------------------------------------------------------------------------


@dataclass
class Result:
    """One benchmark's verdict: a ratio measured in the run, and the target it is held to."""

    name: str
    ratio: float | None
    target: str
    passed: bool | None  # None: not measured (skipped)
    note: str = ""
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "SKIPPED"
        return "PASS" if self.passed else "BELOW TARGET"

    def line(self) -> str:
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.3g}"
        note = f" - {self.note}" if self.note else ""
        return f"RESULT {self.name}: {ratio} (target {self.target}) {self.verdict}{note}"


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say()
    say(f"=== {text} " + "=" * max(0, 76 - len(text)))


# --- timing ------------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time of this process (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """CPU time of another process, from /proc (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL server process on this machine (0 when there is none):
    on a 2-core machine the database competes with the client for the cores."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        if "(postgres)" in text:
            total += process_cpu_seconds(int(stat.parent.name))
    return total


def rss_mb() -> float:
    """Resident set size of this process now, in MB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> None:
    """Start VmHWM afresh (Linux: ``5`` to /proc/self/clear_refs), so a peak read later is this
    benchmark's, not an earlier one's in the same process."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def median_time(run: Callable[[], object], *, repeat: int, warmup: int = 2) -> float:
    """The median wall time of ``run`` over ``repeat`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# --- databases ---------------------------------------------------------------------------------


@dataclass
class Database:
    label: str  # "SQLite" or "PostgreSQL"
    url: str
    engine: Engine

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"


def backends(postgres_url: str | None) -> list[tuple[str, str | None]]:
    """Where a benchmark runs: ("SQLite", None), then ("PostgreSQL", url) when a server is given."""
    return [("SQLite", None)] + ([("PostgreSQL", postgres_url)] if postgres_url else [])


@contextlib.contextmanager
def database_for(url: str | None, directory: Path) -> Iterator[Database]:
    """A fresh migrated database: a SQLite file in ``directory``, or one on the ``url`` server."""
    with sqlite_database(directory) if url is None else postgres_database(url) as database:
        yield database


@contextlib.contextmanager
def sqlite_database(directory: Path, name: str = "bench") -> Iterator[Database]:
    """A migrated SQLite file database (WAL, as dstrack configures it)."""
    url = f"sqlite:///{directory / f'{name}.sqlite3'}"
    migrate(url)
    engine = create_engine(url)
    try:
        yield Database("SQLite", url, engine)
    finally:
        engine.dispose()


_postgres_count = 0


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[Database]:
    """A fresh, migrated database on a PostgreSQL server, dropped afterwards."""
    global _postgres_count
    _postgres_count += 1
    name = f"dstrack_bench_{os.getpid()}_{_postgres_count}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine: Engine | None = None
    try:
        migrate(url)
        engine = create_engine(url)
        yield Database("PostgreSQL", url, engine)
    finally:
        if engine is not None:
            engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start_postgres() -> str | None:
    """The URL of the throwaway server of ``scripts/postgres-for-tests`` (started if needed)."""
    script = REPO / "scripts" / "postgres-for-tests"
    try:
        done = subprocess.run(
            [str(script), "start"], check=True, capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.SubprocessError) as exc:
        say(f"(PostgreSQL unavailable: {exc}; its measurements are skipped)")
        return None
    return done.stdout.strip().splitlines()[-1]


def fast_bulk_load(database: Database) -> None:
    """SQLite: no fsync while bulk-loading (the measured queries run with dstrack's pragmas)."""
    if database.is_sqlite:
        with database.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA synchronous=OFF")


# --- inventories -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    organization_id: int
    product_id: int


def base_inventory(engine: Engine, organizations: int = 1) -> Inventory:
    """Organizations and the product devices point at (inserted directly)."""
    now = clock.now()
    with engine.begin() as connection:
        first = None
        for number in range(organizations):
            org_id = connection.execute(
                ORGANIZATIONS.insert()
                .values(name=f"Benchmark Customer {number}", type="CUSTOMER", created_at=now)
                .returning(ORGANIZATIONS.c.id)
            ).scalar_one()
            first = first or org_id
        product_id = (
            connection.execute(
                sa.select(PRODUCTS.c.id).where(PRODUCTS.c.name == "Benchmark Product")
            ).scalar()
            or connection.execute(
                PRODUCTS.insert()
                .values(name="Benchmark Product", is_system=False, created_at=now)
                .returning(PRODUCTS.c.id)
            ).scalar_one()
        )
    assert first is not None
    return Inventory(organization_id=first, product_id=product_id)


def host_device_rows(
    inventory: Inventory,
    ids: Sequence[int],
    *,
    host: Callable[[int], str],
    port: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Active, host-sourced SSL Certificate devices with the given primary keys."""
    return [
        {
            "id": i,
            "category": "SSL_CERTIFICATE",
            "name": f"device {i}",
            "description": None,
            "active": True,
            "organization_id": inventory.organization_id,
            "contract_id": None,
            "product_id": inventory.product_id,
            "parent_id": None,
            "ssl_source_kind": "HOST",
            "ssl_host": host(i),
            "ssl_port": port,
            "ssl_pem": None,
            "domain": None,
            "expires_at": None,
            "last_updated_at": None,
            "last_update_error": None,
            "created_at": now,
            "modified_at": now,
        }
        for i in ids
    ]


def insert_chunked(
    engine: Engine, table: sa.Table, rows: Sequence[dict[str, Any]], *, chunk: int = 20_000
) -> None:
    """``executemany`` in chunks, one transaction per chunk."""
    for start in range(0, len(rows), chunk):
        with engine.begin() as connection:
            connection.execute(table.insert(), list(rows[start : start + chunk]))
