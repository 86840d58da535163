"""What ``GET /metrics`` reads: active devices in keyset batches of plain rows (SQLAlchemy
Core, only the columns a metric needs), and the update counters the recorder keeps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from models import (
    DeviceCategory,
)
from models.tables import DEVICES, DOMAIN_DETAILS, ORGANIZATIONS, SSL_DETAILS
from models.tables import UPDATE_COUNTERS as COUNTERS
from models.tables import UPDATE_DURATION_BUCKETS as DURATION_BUCKETS

BATCH_SIZE = 5000
# The categories whose devices are updated (the others have no audit to refresh).
UPDATED_CATEGORIES = (DeviceCategory.SSL_CERTIFICATE.value, DeviceCategory.DOMAIN.value)


class epoch_seconds(FunctionElement[int]):
    """A UTC timestamp column as whole seconds since the epoch, computed by the database: the
    rows then carry plain integers (parsing 100,000 datetimes in Python costs more than the
    query)."""

    type = sa.BigInteger()
    name = "epoch_seconds"
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds)
def _epoch_seconds_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(floor(extract(epoch FROM {column})) AS BIGINT)"


class DeviceRow(NamedTuple):
    """One active device as ``devices()`` reads it (a tuple: a renderer reads 100,000 of them,
    and a tuple's fields cost a tenth of a SQLAlchemy row's attributes)."""

    id: int
    organization: str
    name: str
    category: str
    last_updated: int | None  # Unix time
    consecutive_failures: int
    ssl_host: str | None
    ssl_port: int | None
    common_name: str | None
    issued_by: str | None
    valid_from: int | None  # Unix time; None: no SSL details
    valid_until: int | None
    trusted: bool | None
    hostname_matches: bool | None
    domain: str | None
    registrar: str | None
    domain_expires: int | None  # Unix time; None: no registration details with an expiry


def devices() -> sa.Select[Any]:
    """Every active device, with its organization's name, its SSL details and its
    registration details when it has them (outer joins): one row per device, whatever its
    category, so one pass over the devices feeds every per-device metric. The columns are
    ``DeviceRow``'s."""
    return (
        sa.select(
            DEVICES.c.id,
            ORGANIZATIONS.c.name.label("organization"),
            DEVICES.c.name,
            DEVICES.c.category,
            epoch_seconds(DEVICES.c.last_updated_at).label("last_updated"),
            DEVICES.c.consecutive_failures,
            DEVICES.c.ssl_host,
            DEVICES.c.ssl_port,
            SSL_DETAILS.c.common_name,
            SSL_DETAILS.c.issued_by,
            epoch_seconds(SSL_DETAILS.c.valid_from).label("valid_from"),
            epoch_seconds(SSL_DETAILS.c.valid_until).label("valid_until"),
            SSL_DETAILS.c.trusted,
            SSL_DETAILS.c.hostname_matches,
            DEVICES.c.domain,
            DOMAIN_DETAILS.c.registrar,
            epoch_seconds(DOMAIN_DETAILS.c.expires_at).label("domain_expires"),
        )
        .join_from(DEVICES, ORGANIZATIONS, ORGANIZATIONS.c.id == DEVICES.c.organization_id)
        .outerjoin(SSL_DETAILS, SSL_DETAILS.c.device_id == DEVICES.c.id)
        .outerjoin(DOMAIN_DETAILS, DOMAIN_DETAILS.c.device_id == DEVICES.c.id)
        .where(DEVICES.c.active)
    )


def device_batches(
    connection: Connection, *, batch_size: int = BATCH_SIZE
) -> Iterator[list[DeviceRow]]:
    """The active devices by ascending id, ``batch_size`` at a time: each batch is one range
    query on the primary key (keyset), whatever the table size."""
    query = devices()
    last = 0
    while True:
        statement = query.where(DEVICES.c.id > last).order_by(DEVICES.c.id).limit(batch_size)
        result = connection.execute(statement)
        try:
            # The DBAPI's own tuples: every column is already a plain value (Unix times made
            # by the database, booleans as bool or 0/1), and SQLAlchemy's Row objects would
            # cost as much as the query itself on 100,000 devices.
            rows = list(map(DeviceRow._make, result.cursor.fetchall()))
        finally:
            result.close()
        if rows:
            yield rows
        if len(rows) < batch_size:
            return
        last = rows[-1].id


def update_counts(connection: Connection) -> list[tuple[str, str, int]]:
    """(category, outcome, count) of every update counted so far."""
    query = sa.select(COUNTERS.c.category, COUNTERS.c.outcome, COUNTERS.c.count).order_by(
        COUNTERS.c.category, COUNTERS.c.outcome
    )
    return [(r[0], r[1], int(r[2])) for r in connection.execute(query)]


@dataclass(frozen=True)
class DurationBucket:
    category: str
    le: str  # the bucket's upper bound as Prometheus prints it
    count: int  # retrievals in this bucket only (not cumulative)
    sum_seconds: float


def duration_buckets(connection: Connection) -> list[DurationBucket]:
    query = sa.select(
        DURATION_BUCKETS.c.category,
        DURATION_BUCKETS.c.le,
        DURATION_BUCKETS.c.count,
        DURATION_BUCKETS.c.sum_seconds,
    ).order_by(DURATION_BUCKETS.c.category)
    return [DurationBucket(*row) for row in connection.execute(query)]


def open_alert_counts(connection: Connection, alerts: sa.Table) -> list[tuple[str, str, int]]:
    """(kind, severity, count) of the alerts in state OPEN (acknowledged ones are being dealt
    with), from a table with columns ``kind``, ``severity`` and ``state``: ``ALERTS``."""
    query = (
        sa.select(alerts.c.kind, alerts.c.severity, sa.func.count())
        .where(alerts.c.state == "OPEN")
        .group_by(alerts.c.kind, alerts.c.severity)
        .order_by(alerts.c.kind, alerts.c.severity)
    )
    return [(row[0], row[1], int(row[2])) for row in connection.execute(query)]
