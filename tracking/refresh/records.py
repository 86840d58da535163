"""The pipeline's own subscribers: every update adds an Activity note, and a RAW file when it
learned something new. Also the note people's actions add (``add_note``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from models.tables import ACTIVITY_NOTES as NOTES
from models.tables import RAW_FILES
from tracking.refresh.events import StoredRawFile, UpdateBatch
from tracking.refresh.rawstore import RawStore


def add_note(session: Session, device_id: int, text: str, *, author: str, now: datetime) -> None:
    """One Activity note, in the caller's transaction (after what the session holds)."""
    add_notes(session, [device_id], text, author=author, now=now)


def add_notes(
    session: Session, device_ids: Sequence[int], text: str, *, author: str, now: datetime
) -> None:
    """The same Activity note on each of ``device_ids``, in one statement."""
    if device_ids:
        rows = [
            {"device_id": i, "created_at": now, "author": author, "text": text} for i in device_ids
        ]
        session.execute(sa.insert(NOTES), rows)


class ActivityNotes:
    """Every update, changed or not, failed or not, adds a note."""

    def on_updates(self, batch: UpdateBatch) -> None:
        rows = [
            {"device_id": e.device_id, "created_at": e.at, "author": e.author, "text": e.note}
            for e in batch.events
            if e.note is not None
        ]
        if rows:
            batch.session.execute(sa.insert(NOTES), rows)


class RawFiles:
    """An update that learned something new keeps what the outside world answered: the blob
    first (content-addressed, never overwritten, harmless if the transaction rolls back), then
    its row."""

    def __init__(self, store: RawStore) -> None:
        self.store = store

    def on_updates(self, batch: UpdateBatch) -> None:
        kept = [event for event in batch.events if event.raw is not None]
        blobs = self.store.put_many([event.raw.content for event in kept if event.raw])
        rows = [
            {
                "device_id": event.device_id,
                "created_at": event.at,
                "file_name": event.raw.file_name,
                "content_type": event.raw.content_type,
                "size_bytes": blob.size_bytes,
                "sha256": blob.sha256,
            }
            for event, blob in zip(kept, blobs, strict=True)
            if event.raw is not None
        ]
        if not rows:
            return
        statement = sa.insert(RAW_FILES).returning(RAW_FILES.c.id, sort_by_parameter_order=True)
        ids = batch.session.execute(statement, rows).scalars().all()
        for row, raw_id in zip(rows, ids, strict=True):
            stored = StoredRawFile(id=raw_id, **row)  # type: ignore[arg-type]  # the row's columns
            batch.raw_files[stored.device_id] = stored
