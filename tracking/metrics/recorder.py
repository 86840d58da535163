"""Counts every batch of updates into the database (a subscriber of the update pipeline).

Inside the update's own transaction, a batch adds to ``update_counters`` (category, outcome)
and ``update_duration_buckets`` (category, bucket) with one upsert statement per table, one
row per key - never a row per update. A batch that rolls back takes its counts with it, so a
retried write is counted once. Rows are written in key order, so concurrent batches (several
Dagster runs, API workers) lock them in the same order and never deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from models.tables import UPDATE_COUNTERS as COUNTERS
from models.tables import UPDATE_DURATION_BUCKETS as DURATION_BUCKETS
from tracking.metrics.gauges import float_to_go_string
from tracking.refresh.events import UpdateBatch, UpdateEvent

# Upper bounds (seconds) of the retrieval-time histogram: from a look-up answered at once on a
# nearby network to one that waited for several probe timeouts (10 s each by default).
BUCKET_BOUNDS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
INF = "+Inf"
# The ``le`` label of each bucket as Prometheus prints it, +Inf last.
BUCKET_LABELS: tuple[str, ...] = (*(float_to_go_string(b) for b in BUCKET_BOUNDS), INF)

OUTCOMES = ("updated", "unchanged", "failed")


def outcome_of(event: UpdateEvent) -> str:
    """``failed`` (the previous audit stays), ``updated`` (first audit or something changed),
    or ``unchanged``. A domain whose registration was read but whose DNS look-up failed is not
    failed: it was updated, and says what is missing."""
    if event.failed:
        return "failed"
    return "updated" if event.changed else "unchanged"


def bucket_of(seconds: float) -> str:
    """The ``le`` label of the smallest bucket ``seconds`` falls in."""
    for bound, label in zip(BUCKET_BOUNDS, BUCKET_LABELS, strict=False):
        if seconds <= bound:
            return label
    return INF


class UpdateMetrics:
    """Adds each batch's updates (by category and outcome) and retrieval times (the events
    that asked the outside world: ``retrieval_seconds`` set) to the counters."""

    def on_updates(self, batch: UpdateBatch) -> None:
        counts = Counter((e.category, outcome_of(e)) for e in batch.events)
        buckets: dict[tuple[str, str], list[float]] = {}
        for event in batch.events:
            if event.retrieval_seconds is None:
                continue
            key = (event.category, bucket_of(event.retrieval_seconds))
            total = buckets.setdefault(key, [0, 0.0])
            total[0] += 1
            total[1] += event.retrieval_seconds
        if counts:
            rows = [
                {"category": c, "outcome": o, "count": n} for (c, o), n in sorted(counts.items())
            ]
            _add(batch.session, COUNTERS, rows, keys=("category", "outcome"), added=("count",))
        if buckets:
            rows = [
                {"category": c, "le": le, "count": int(n), "sum_seconds": s}
                for (c, le), (n, s) in sorted(buckets.items())
            ]
            _add(
                batch.session,
                DURATION_BUCKETS,
                rows,
                keys=("category", "le"),
                added=("count", "sum_seconds"),
            )


def _add(
    session: Session,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: tuple[str, ...],
    added: tuple[str, ...],
) -> None:
    """Insert ``rows``, or add their ``added`` columns to the rows already there (one
    ``INSERT ... ON CONFLICT DO UPDATE``, on SQLite and PostgreSQL alike)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={c: table.c[c] + insert.excluded[c] for c in added},
    )
    session.execute(statement, list(rows))
