"""dstrack's Prometheus metrics: a ``prometheus_client`` collector over the database, and the
exposition the API serves, rendered with bounded memory.

``MetricsCollector.collect`` yields complete metric families (``generate_latest`` renders
them); it holds every sample of a family at once, which is fine for a test or a small
inventory. ``MetricsCollector.exposition`` renders the same bytes for any number of devices:
one pass over the active devices in keyset batches, each gauge's lines written to its own
spooled temporary file (in memory up to ``SPOOL_BYTES``, then on disk; the text format wants
each metric's lines together), and the small families (counters, histogram) rendered by
``generate_latest``. The response then streams those parts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

import sqlalchemy as sa
from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy.engine import Connection, Engine

from models.tables import ALERTS
from tracking.metrics import readers
from tracking.metrics.gauges import DEVICE_GAUGES, DeviceLines, add_samples
from tracking.metrics.recorder import BUCKET_BOUNDS, BUCKET_LABELS, INF, OUTCOMES

SPOOL_BYTES = 1024 * 1024  # per gauge, before its lines go to a temporary file
READ_BYTES = 256 * 1024


@dataclass
class Exposition:
    """The rendered text format, in parts: bytes, and spooled files to read from the start."""

    parts: list[bytes | IO[bytes]] = field(default_factory=list)

    def chunks(self) -> Iterator[bytes]:
        """The text in order, at most ``READ_BYTES`` at a time; closes the files at the end."""
        try:
            for part in self.parts:
                if isinstance(part, bytes):
                    yield part
                    continue
                part.seek(0)
                while chunk := part.read(READ_BYTES):
                    yield chunk
        finally:
            self.close()

    def close(self) -> None:
        for part in self.parts:
            if not isinstance(part, bytes):
                part.close()


@dataclass(frozen=True)
class _Families:
    """A collector of ready families, for ``generate_latest``."""

    families: Iterable[Metric]

    def collect(self) -> Iterable[Metric]:
        return self.families


class MetricsCollector:
    """The metrics of the devices, of the update pipeline and of the alerts, read from the
    database at each scrape. ``alerts``: the table ``dstrack_alerts_open`` counts (columns
    kind, severity, state); None leaves that gauge out."""

    def __init__(
        self,
        engine: Engine,
        *,
        alerts: sa.Table | None = ALERTS,
        batch_size: int | None = None,
    ) -> None:
        self.engine = engine
        self.alerts = alerts
        self.batch_size = batch_size or readers.BATCH_SIZE

    def collect(self) -> Iterable[Metric]:
        families = [gauge.family() for gauge in DEVICE_GAUGES]
        with self._connection() as connection:
            for rows in readers.device_batches(connection, **self._batch()):
                add_samples(families, rows)
            summary = self._summary(connection)
        return [*families, *summary]

    def exposition(self) -> Exposition:
        """The whole text format, rendered now (call it off the event loop)."""
        exposition = Exposition()
        try:
            with self._connection() as connection:
                exposition.parts.extend(self._device_parts(connection))
                exposition.parts.append(generate_latest(_Families(self._summary(connection))))
        except BaseException:
            exposition.close()
            raise
        return exposition

    def _device_parts(self, connection: Connection) -> list[bytes | IO[bytes]]:
        renderer = DeviceLines()
        spools: list[IO[bytes]] = [
            tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")  # noqa: SIM115
            for _ in DEVICE_GAUGES
        ]
        parts: list[bytes | IO[bytes]] = []
        for gauge, spool in zip(DEVICE_GAUGES, spools, strict=True):
            parts.extend([generate_latest(_Families([gauge.family()])), spool])
        try:
            for rows in readers.device_batches(connection, **self._batch()):
                lines: list[list[str]] = [[] for _ in DEVICE_GAUGES]
                for row in rows:
                    renderer.add(row, lines)
                for spool, out in zip(spools, lines, strict=True):
                    spool.write("".join(out).encode())
        except BaseException:
            for spool in spools:
                spool.close()
            raise
        return parts

    def _summary(self, connection: Connection) -> list[Metric]:
        """The families that are not per device: update counts, durations, open alerts."""
        families: list[Metric] = [
            updates_family(readers.update_counts(connection)),
            duration_family(readers.duration_buckets(connection)),
        ]
        if self.alerts is not None:
            families.append(alerts_family(readers.open_alert_counts(connection, self.alerts)))
        return families

    def _batch(self) -> dict[str, int]:
        return {"batch_size": self.batch_size}

    def _connection(self) -> Connection:
        connection = self.engine.connect()
        if connection.dialect.name == "postgresql":
            # One snapshot for the whole scrape (a device is never counted twice or missed).
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        return connection


def updates_family(counts: Iterable[tuple[str, str, int]]) -> CounterMetricFamily:
    """``dstrack_updates_total``; every category and outcome, from 0."""
    totals = {(c, o): 0 for c in readers.UPDATED_CATEGORIES for o in OUTCOMES}
    for category, outcome, count in counts:
        totals[(category, outcome)] = count
    family = CounterMetricFamily(
        "dstrack_updates",
        "Updates of devices (forced, scheduled, imported) by category and outcome.",
        labels=["category", "outcome"],
    )
    for (category, outcome), count in sorted(totals.items()):
        family.add_metric([category, outcome], count)
    return family


def duration_family(buckets: Iterable[readers.DurationBucket]) -> HistogramMetricFamily:
    """``dstrack_update_duration_seconds``: cumulative buckets per category. A stored bucket
    whose bound is no longer one of ``BUCKET_BOUNDS`` counts in the next bound above it."""
    bounds = [*BUCKET_BOUNDS, float("inf")]
    per_category: dict[str, tuple[list[int], list[float]]] = {
        c: ([0] * len(bounds), [0.0]) for c in readers.UPDATED_CATEGORIES
    }
    for bucket in buckets:
        counts, total = per_category.setdefault(bucket.category, ([0] * len(bounds), [0.0]))
        le = float("inf") if bucket.le == INF else float(bucket.le)
        index = next(i for i, bound in enumerate(bounds) if le <= bound)
        counts[index] += bucket.count
        total[0] += bucket.sum_seconds
    family = HistogramMetricFamily(
        "dstrack_update_duration_seconds",
        "Time an update spent asking the outside world (TLS, RDAP/WHOIS, DNS), by category.",
        labels=["category"],
    )
    for category, (counts, total) in sorted(per_category.items()):
        cumulative, running = [], 0
        for label, count in zip(BUCKET_LABELS, counts, strict=True):
            running += count
            cumulative.append((label, float(running)))
        family.add_metric([category], cumulative, sum_value=total[0])
    return family


def alerts_family(counts: Iterable[tuple[str, str, int]]) -> GaugeMetricFamily:
    """``dstrack_alerts_open``: open alerts by kind and severity."""
    family = GaugeMetricFamily(
        "dstrack_alerts_open", "Open alerts by kind and severity.", labels=["kind", "severity"]
    )
    for kind, severity, count in counts:
        family.add_metric([kind, severity], count)
    return family
