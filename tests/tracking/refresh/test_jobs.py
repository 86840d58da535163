"""The auto-updating jobs as a work queue: due devices, claims, releases (database only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from models import (
    AppSetting,
    Device,
    DeviceCategory,
    Organization,
    OrganizationType,
    Product,
    SslSourceKind,
    UpdateJob,
)
from models.db import reader, transaction
from tracking.refresh import jobs
from tracking.refresh.writes import sync_jobs

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def org_and_product(engine: Engine) -> tuple[int, int]:
    with transaction(engine) as session:
        org = Organization(name="Acme", type=OrganizationType.CUSTOMER, created_at=T0)
        product = Product(name="None", is_system=True, created_at=T0)
        session.add(org)
        session.add(product)
        session.flush()
        assert org.id is not None and product.id is not None
        return org.id, product.id


def add_device(
    engine: Engine,
    org_and_product: tuple[int, int],
    *,
    due_at: datetime | None,
    active: bool = True,
    claimed_by: str | None = None,
    claimed_until: datetime | None = None,
    expires_at: datetime | None = None,
) -> int:
    """A host-sourced SSL device, with an update job due at ``due_at`` (None: no job)."""
    org_id, product_id = org_and_product
    with transaction(engine) as session:
        device = Device(
            category=DeviceCategory.SSL_CERTIFICATE,
            name="example.test:443",
            active=active,
            organization_id=org_id,
            product_id=product_id,
            ssl_source_kind=SslSourceKind.HOST,
            ssl_host="example.test",
            ssl_port=443,
            expires_at=expires_at,
            created_at=T0,
            modified_at=T0,
        )
        session.add(device)
        session.flush()
        assert device.id is not None
        if due_at is not None:
            session.add(
                UpdateJob(
                    device_id=device.id,
                    due_at=due_at,
                    interval_seconds=7 * 86400,
                    reason="test",
                    claimed_by=claimed_by,
                    claimed_until=claimed_until,
                )
            )
        return device.id


def job(engine: Engine, device_id: int) -> UpdateJob | None:
    with reader(engine) as session:
        return session.get(UpdateJob, device_id)


# --- due devices -----------------------------------------------------------------------------


def test_due_devices_are_listed_oldest_due_first_then_by_device(
    engine: Engine, org_and_product: tuple[int, int]
) -> None:
    late = add_device(engine, org_and_product, due_at=T0 - MINUTE)
    early = add_device(engine, org_and_product, due_at=T0 - 10 * MINUTE)
    tie = add_device(engine, org_and_product, due_at=T0 - MINUTE)
    exactly_now = add_device(engine, org_and_product, due_at=T0)
    add_device(engine, org_and_product, due_at=T0 + MINUTE)  # not yet due

    assert jobs.due_device_ids(engine, now=T0, limit=10) == [early, late, tie, exactly_now]
    assert jobs.due_device_ids(engine, now=T0, limit=2) == [early, late]
    assert jobs.due_device_ids(engine, now=T0, limit=0) == []


def test_due_jobs_continue_after_a_previous_page(
    engine: Engine, org_and_product: tuple[int, int]
) -> None:
    ids = [add_device(engine, org_and_product, due_at=T0 - MINUTE) for _ in range(3)]
    ids.append(add_device(engine, org_and_product, due_at=T0))

    first = jobs.due_jobs(engine, now=T0, limit=2)
    rest = jobs.due_device_ids(engine, now=T0, limit=10, after=first[-1])

    assert [j.device_id for j in first] == ids[:2]
    assert rest == ids[2:]


def test_claimed_and_inactive_devices_are_not_due_until_a_claim_expires(
    engine: Engine, org_and_product: tuple[int, int]
) -> None:
    free = add_device(engine, org_and_product, due_at=T0 - MINUTE)
    add_device(
        engine, org_and_product, due_at=T0 - MINUTE, claimed_by="run:a", claimed_until=T0 + MINUTE
    )
    expired_claim = add_device(
        engine, org_and_product, due_at=T0 - MINUTE, claimed_by="run:b", claimed_until=T0
    )
    add_device(engine, org_and_product, due_at=T0 - MINUTE, active=False)  # a stale job
    add_device(engine, org_and_product, due_at=None)  # no job (e.g. a PEM certificate)

    assert jobs.due_device_ids(engine, now=T0, limit=10) == [free, expired_claim]


def test_next_due_at_ignores_claimed_jobs(engine: Engine, org_and_product: tuple[int, int]) -> None:
    assert jobs.next_due_at(engine, now=T0) is None
    add_device(
        engine, org_and_product, due_at=T0 - MINUTE, claimed_by="run:a", claimed_until=T0 + MINUTE
    )
    add_device(engine, org_and_product, due_at=T0 + 5 * MINUTE)

    assert jobs.next_due_at(engine, now=T0) == T0 + 5 * MINUTE


def test_the_due_query_uses_the_due_index_and_never_scans_devices(
    engine: Engine, org_and_product: tuple[int, int]
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite")
    for _ in range(3):
        add_device(engine, org_and_product, due_at=T0 - MINUTE)
    statements: list[tuple[str, object]] = []

    def capture(_c: object, _cur: object, statement: str, params: object, *_: object) -> None:
        statements.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        jobs.due_device_ids(engine, now=T0, limit=200)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)

    (statement, params), *_ = statements
    with engine.connect() as connection:
        plan = " | ".join(
            str(row[-1])
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)  # type: ignore[arg-type]
        )
    assert "USING COVERING INDEX ix_update_jobs_due " in plan, plan
    assert "devices USING INTEGER PRIMARY KEY" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # the index gives the order


# --- claims ----------------------------------------------------------------------------------


def test_a_claim_holds_jobs_until_its_lease_expires(
    engine: Engine, org_and_product: tuple[int, int]
) -> None:
    a = add_device(engine, org_and_product, due_at=T0 - MINUTE)
    b = add_device(engine, org_and_product, due_at=T0 - MINUTE)
    lease = timedelta(minutes=30)

    assert jobs.claim(engine, [a, b], claimed_by="run:one", now=T0, lease=lease) == [a, b]
    assert jobs.claim(engine, [a, b], claimed_by="run:two", now=T0 + MINUTE, lease=lease) == []
    held = job(engine, a)
    assert held is not None
    assert (held.claimed_by, held.claimed_until) == ("run:one", T0 + lease)

    # The holder renews its own claim; someone else gets it once the lease is over.
    assert jobs.claim(engine, [a], claimed_by="run:one", now=T0 + 10 * MINUTE, lease=lease) == [a]
    assert jobs.claim(engine, [a, b], claimed_by="run:two", now=T0 + lease, lease=lease) == [b]
    assert jobs.claim(engine, [a], claimed_by="run:two", now=T0 + 40 * MINUTE, lease=lease) == [a]


def test_a_claim_takes_only_existing_jobs_and_with_due_by_only_due_ones(
    engine: Engine, org_and_product: tuple[int, int]
) -> None:
    due = add_device(engine, org_and_product, due_at=T0 - MINUTE)
    later = add_device(engine, org_and_product, due_at=T0 + MINUTE)
    no_job = add_device(engine, org_and_product, due_at=None)

    assert jobs.claim(engine, [due, later, no_job, 9999], claimed_by="s", now=T0, due_by=T0) == [
        due
    ]
    assert jobs.claim(engine, [later, no_job], claimed_by="m", now=T0) == [later]
    assert jobs.claim(engine, [], claimed_by="m", now=T0) == []
    with pytest.raises(ValueError, match="claimant"):
        jobs.claim(engine, [due], claimed_by="x" * 65, now=T0)


def test_claim_for_run_tells_held_busy_and_unscheduled_devices_apart(
    engine: Engine, org_and_product: tuple[int, int]
) -> None:
    mine = add_device(engine, org_and_product, due_at=T0 - MINUTE)
    renewed = add_device(
        engine, org_and_product, due_at=T0 - MINUTE, claimed_by="run:me", claimed_until=T0 + MINUTE
    )
    busy = add_device(
        engine, org_and_product, due_at=T0, claimed_by="run:other", claimed_until=T0 + MINUTE
    )
    unscheduled = add_device(engine, org_and_product, due_at=None)

    held = jobs.claim_for_run(
        engine, [mine, renewed, busy, unscheduled, 4242], claimed_by="run:me", now=T0
    )

    assert held == jobs.RunClaim(
        claimed=(mine, renewed), busy=(busy,), unscheduled=tuple(sorted((unscheduled, 4242)))
    )
    renewed_job = job(engine, renewed)
    assert renewed_job is not None and renewed_job.claimed_until == T0 + jobs.CLAIM_LEASE


def test_release_gives_back_only_own_claims_and_can_defer_them(
    engine: Engine, org_and_product: tuple[int, int]
) -> None:
    early = add_device(engine, org_and_product, due_at=T0 - MINUTE)
    late = add_device(engine, org_and_product, due_at=T0 + timedelta(days=3))
    theirs = add_device(engine, org_and_product, due_at=T0 - MINUTE)
    jobs.claim(engine, [early, late], claimed_by="run:me", now=T0)
    jobs.claim(engine, [theirs], claimed_by="run:them", now=T0)

    released = jobs.release(
        engine, [early, late, theirs], "run:me", defer_until=T0 + timedelta(hours=1)
    )

    assert released == [early, late]
    early_job, late_job, their_job = (job(engine, i) for i in (early, late, theirs))
    assert early_job is not None and late_job is not None and their_job is not None
    assert (early_job.claimed_by, early_job.claimed_until) == (None, None)
    assert early_job.due_at == T0 + timedelta(hours=1)  # not picked up again at once
    assert late_job.due_at == T0 + timedelta(days=3)  # deferring never brings a job forward
    assert their_job.claimed_by == "run:them"
    assert jobs.release(engine, [early], "run:me") == []


def test_rescheduling_after_an_update_clears_the_claim(
    engine: Engine, org_and_product: tuple[int, int]
) -> None:
    device_id = add_device(
        engine, org_and_product, due_at=T0 - MINUTE, expires_at=T0 + timedelta(days=200)
    )
    jobs.claim(engine, [device_id], claimed_by="run:me", now=T0)

    with transaction(engine) as session:
        sync_jobs(session, [device_id], now=T0)

    rescheduled = job(engine, device_id)
    assert rescheduled is not None
    assert (rescheduled.claimed_by, rescheduled.claimed_until) == (None, None)
    assert rescheduled.due_at == T0 + timedelta(days=30)
    assert jobs.release(engine, [device_id], "run:me") == []


# --- batches ---------------------------------------------------------------------------------


def test_due_devices_are_claimed_in_disjoint_batches(
    engine: Engine, org_and_product: tuple[int, int]
) -> None:
    ids = [add_device(engine, org_and_product, due_at=T0 - i * MINUTE) for i in range(7)]
    oldest_first = list(reversed(ids))

    batches = jobs.claim_due_batches(
        engine, now=T0, batch_size=3, max_batches=2, claimant_prefix="due-20300101T120000"
    )

    assert [b.device_ids for b in batches] == [tuple(oldest_first[:3]), tuple(oldest_first[3:6])]
    assert batches[0].first_due_at == T0 - 6 * MINUTE
    assert batches[0].last_due_at == T0 - 4 * MINUTE
    assert len({b.claimed_by for b in batches}) == 2
    assert all(len(b.claimed_by) <= jobs.CLAIMANT_MAX for b in batches)
    for batch in batches:
        for device_id in batch.device_ids:
            held = job(engine, device_id)
            assert held is not None and held.claimed_by == batch.claimed_by

    # The next tick gets what is left, and nothing twice.
    rest = jobs.claim_due_batches(
        engine, now=T0, batch_size=3, max_batches=2, claimant_prefix="due-20300101T120030"
    )
    assert [b.device_ids for b in rest] == [(oldest_first[6],)]
    assert (
        jobs.claim_due_batches(
            engine, now=T0, batch_size=3, max_batches=2, claimant_prefix="due-20300101T120100"
        )
        == []
    )


def test_batch_claimants_fit_the_column_and_differ_by_devices() -> None:
    a = jobs.batch_claimant("due-20300101T120000000000", [1, 2, 3])
    assert a == jobs.batch_claimant("due-20300101T120000000000", [3, 2, 1])
    assert a != jobs.batch_claimant("due-20300101T120000000000", [1, 2, 4])
    assert len(a) <= jobs.CLAIMANT_MAX
    with pytest.raises(ValueError, match="prefix"):
        jobs.batch_claimant("x" * 60, [1])


def test_scheduling_follows_the_tracking_switch(engine: Engine) -> None:
    assert jobs.scheduling_enabled(engine) is True
    with transaction(engine) as session:
        session.add(AppSetting(key="tracking_enabled", value="false"))
    assert jobs.scheduling_enabled(engine) is False
