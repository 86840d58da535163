"""Counters of the update pipeline kept in the database, so every process adds to the same ones.

Refreshes run in Dagster run processes and forced updates in API workers; a counter in one
process's memory would never see the others. Each batch of updates adds its counts here, in
its own transaction, with one upsert per table (``tracking.metrics``), and ``GET /metrics``
reads them back as a Prometheus counter and histogram.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class UpdateCounter(SQLModel, table=True):
    """How many updates of a device category ended in an outcome (updated, unchanged, failed)."""

    __tablename__ = "update_counters"

    category: str = Field(sa_type=sa.String(16), primary_key=True)
    outcome: str = Field(sa_type=sa.String(16), primary_key=True)
    count: int = Field(sa_type=sa.BigInteger)


class UpdateDurationBucket(SQLModel, table=True):
    """The retrievals of a category whose time fell in one histogram bucket: the bucket's
    upper bound ``le`` as Prometheus prints it (``"0.5"``, ``"+Inf"``), how many, and their
    total time. Not cumulative: the reader adds the buckets up."""

    __tablename__ = "update_duration_buckets"

    category: str = Field(sa_type=sa.String(16), primary_key=True)
    le: str = Field(sa_type=sa.String(16), primary_key=True)
    count: int = Field(sa_type=sa.BigInteger)
    sum_seconds: float = Field(sa_type=sa.Double)
