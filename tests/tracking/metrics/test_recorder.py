"""The recorder: each batch of updates adds its counts to the database, a few statements per
batch, and a batch that rolls back counts nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import transaction
from tracking.core import clock
from tracking.core.changes import Change
from tracking.metrics import UpdateMetrics
from tracking.metrics.readers import duration_buckets, update_counts
from tracking.metrics.recorder import BUCKET_LABELS, bucket_of
from tracking.refresh.events import UpdateBatch, UpdateEvent

CHANGE = Change("fingerprint_sha256", "Fingerprint", "AA", "BB")


def event(
    category: str = "SSL_CERTIFICATE",
    *,
    first: bool = False,
    changed: bool = False,
    failed: bool = False,
    seconds: float | None = 0.2,
) -> UpdateEvent:
    return UpdateEvent(
        device_id=1,
        category=category,
        first=first,
        changes=(CHANGE,) if changed else (),
        error=None,
        failed=failed,
        note=None,
        raw=None,
        expires_at=None,
        previous_expires_at=None,
        consecutive_failures=int(failed),
        at=clock.now(),
        author="test",
        retrieval_seconds=seconds,
    )


def record(engine: Engine, events: list[UpdateEvent]) -> None:
    with transaction(engine) as session:
        UpdateMetrics().on_updates(UpdateBatch(session, events, clock.now()))


def counts(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as connection:
        return {(c, o): n for c, o, n in update_counts(connection)}


def buckets(engine: Engine) -> dict[tuple[str, str], tuple[int, float]]:
    with engine.connect() as connection:
        return {
            (b.category, b.le): (b.count, round(b.sum_seconds, 6))
            for b in duration_buckets(connection)
        }


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_outcomes_and_times_are_counted_by_category(engine: Engine) -> None:
    record(
        engine,
        [
            event(first=True, seconds=0.03),
            event(changed=True, seconds=0.3),
            event(seconds=0.3),
            event(seconds=0.04),
            event(failed=True, seconds=12.0),
            event("DOMAIN", failed=True, seconds=45.0),
            event("DOMAIN", seconds=None),  # a person's entry: counted, not timed
        ],
    )
    assert counts(engine) == {
        ("DOMAIN", "failed"): 1,
        ("DOMAIN", "unchanged"): 1,
        ("SSL_CERTIFICATE", "failed"): 1,
        ("SSL_CERTIFICATE", "unchanged"): 2,
        ("SSL_CERTIFICATE", "updated"): 2,
    }
    assert buckets(engine) == {
        ("DOMAIN", "+Inf"): (1, 45.0),
        ("SSL_CERTIFICATE", "0.05"): (2, 0.07),
        ("SSL_CERTIFICATE", "0.5"): (2, 0.6),
        ("SSL_CERTIFICATE", "30.0"): (1, 12.0),
    }


def test_batches_add_up_with_one_statement_per_table(engine: Engine) -> None:
    record(engine, [event(), event(changed=True)])
    with statements(engine) as seen:
        record(engine, [event(seconds=0.01 * i) for i in range(1, 50)] + [event("DOMAIN")])
    writes = [s for s in seen if s.lstrip().upper().startswith("INSERT")]
    assert len(writes) == 2  # counters and buckets, whatever the batch's size
    assert counts(engine) == {
        ("DOMAIN", "unchanged"): 1,
        ("SSL_CERTIFICATE", "unchanged"): 50,
        ("SSL_CERTIFICATE", "updated"): 1,
    }
    assert sum(n for (c, _), (n, _) in buckets(engine).items() if c == "SSL_CERTIFICATE") == 51


def test_a_batch_that_rolls_back_counts_nothing(engine: Engine) -> None:
    record(engine, [event()])
    with pytest.raises(RuntimeError), transaction(engine) as session:
        UpdateMetrics().on_updates(UpdateBatch(session, [event(), event()], clock.now()))
        raise RuntimeError("the update's write failed")
    assert counts(engine) == {("SSL_CERTIFICATE", "unchanged"): 1}


def test_an_empty_batch_writes_nothing(engine: Engine) -> None:
    with statements(engine) as seen, Session(engine) as session:
        UpdateMetrics().on_updates(UpdateBatch(session, [], clock.now()))
    assert seen == []


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(0.0, "0.05"), (0.05, "0.05"), (0.0501, "0.1"), (1.0, "1.0"), (30.0, "30.0"), (30.5, "+Inf")],
)
def test_a_time_falls_in_the_smallest_bucket_that_holds_it(seconds: float, label: str) -> None:
    assert bucket_of(seconds) == label
    assert label in BUCKET_LABELS
