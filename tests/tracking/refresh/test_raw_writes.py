"""Several RAW blobs written at once (a batch of first audits): all kept, or a clear error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracking.refresh.rawstore import RawStore, StorageError


def test_every_blob_of_a_batch_is_stored_and_read_back(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    contents = [f"blob {i}\n".encode() * (i + 1) * 1000 for i in range(20)]
    contents.append(contents[0])  # the same content twice is one blob
    blobs = store.put_many(contents)
    assert [store.get(b.sha256) for b in blobs] == contents
    assert [b.size_bytes for b in blobs] == [len(c) for c in contents]
    assert len({b.sha256 for b in blobs}) == 20
    assert len([p for p in (tmp_path / "raw").rglob("*") if p.is_file()]) == 20


def test_a_batch_with_a_failing_write_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RawStore(tmp_path)
    real_fsync = os.fsync
    calls: list[int] = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StorageError):
        store.put_many([f"blob {i}".encode() for i in range(6)])
    leftovers = [p.name for p in (tmp_path / "raw").rglob(".tmp-*")]
    assert leftovers == []
