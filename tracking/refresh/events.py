"""What one update learned, in one place: the event every subscriber of the pipeline is handed.

The pipeline decides each device's update (``UpdateEvent``), writes the device, its details and
its schedule, then hands the whole batch to its subscribers inside the same transaction: the
RAW files and the Activity notes are written that way, and so are alerts and metrics. A
subscriber adds rows to the transaction; it never talks to the network (a notification is
queued in the outbox, and sent by someone else after the commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from tracking.core.changes import Change
from tracking.core.errors import DstrackError


@dataclass(frozen=True)
class RawContent:
    """A RAW snapshot to keep: what the outside world answered, as received."""

    file_name: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class UpdateEvent:
    """One device's update: what was looked at, what changed, and how it ended."""

    device_id: int
    category: str  # a DeviceCategory value
    first: bool  # the device's first retrieval: nothing "changed", everything is new
    changes: tuple[Change, ...]  # against the last audit; empty when first or failed
    error: DstrackError | None  # why the update (or, for a domain, its DNS part) failed
    failed: bool  # the update as a whole failed: the previous audit stays
    note: str | None  # the Activity note of the update (None: nothing worth one)
    raw: RawContent | None  # the RAW file to keep, when something is new
    expires_at: datetime | None  # the device's expiry after the update
    previous_expires_at: datetime | None
    consecutive_failures: int  # failed updates in a row, this one included
    at: datetime
    author: str
    retrieval_seconds: float | None = None  # time spent asking the outside world
    previous_consecutive_failures: int = 0  # failed updates in a row before this one

    @property
    def changed(self) -> bool:
        return self.first or bool(self.changes)

    def changed_field(self, *names: str) -> Change | None:
        """The first change of one of the given fields, if any."""
        return next((c for c in self.changes if c.field in names), None)


@dataclass(frozen=True)
class StoredRawFile:
    """A RAW file row as written, for who reports it (Dagster's materializations)."""

    id: int
    device_id: int
    created_at: datetime
    file_name: str
    content_type: str
    size_bytes: int
    sha256: str


@dataclass
class UpdateBatch:
    """The updates of one transaction, as subscribers see them."""

    session: Session
    events: Sequence[UpdateEvent]
    now: datetime
    raw_files: dict[int, StoredRawFile] = field(default_factory=dict)  # by device id


class UpdateSubscriber(Protocol):
    """Told of every batch of updates, inside its transaction (after the details are written)."""

    def on_updates(self, batch: UpdateBatch) -> None: ...
