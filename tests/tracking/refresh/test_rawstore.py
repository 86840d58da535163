"""RAW files on disk: content-addressed by SHA-256, written atomically, never overwritten."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tracking.refresh.rawstore import RawStore, StorageError, StoredBlob

CONTENT = b"# host: shop.example\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_blob_is_stored_under_its_sha256(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    digest = hashlib.sha256(CONTENT).hexdigest()

    blob = store.put(CONTENT)

    assert blob == StoredBlob(sha256=digest, size_bytes=len(CONTENT))
    path = tmp_path / "raw" / digest[:2] / digest
    assert files(tmp_path) == [path]
    assert path.read_bytes() == CONTENT
    assert store.get(digest) == CONTENT


def test_identical_content_is_one_blob_written_once(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    first = store.put(CONTENT)
    path = store.path_for(first.sha256)
    before = path.stat()

    again = store.put(CONTENT)

    assert again == first
    assert files(tmp_path) == [path]
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_different_contents_are_different_blobs(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    contents = [CONTENT, CONTENT + b"\n", b"", bytes(range(256))]
    digests = [store.put(content).sha256 for content in contents]
    assert len(set(digests)) == len(contents)
    assert [store.get(d) for d in digests] == contents
    assert len(files(tmp_path)) == len(contents)


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_neither_a_blob_nor_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    store = RawStore(tmp_path)

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(StorageError) as refused:
        store.put(CONTENT)
    assert str(tmp_path) not in refused.value.message
    monkeypatch.undo()

    assert files(tmp_path) == []
    # The next attempt writes the blob whole.
    blob = store.put(CONTENT)
    assert store.get(blob.sha256) == CONTENT
    assert len(files(tmp_path)) == 1


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../" * 4 + "etc/passwd",
        "a" * 63,
        "a" * 65,
        "A" * 64,  # digests are lowercase
        "g" * 64,
        "/" + "a" * 63,
        "a" * 62 + "/.",
        "a" * 62 + "\x00a",
    ],
)
def test_only_sha256_digests_name_a_blob(tmp_path: Path, name: str) -> None:
    store = RawStore(tmp_path)
    with pytest.raises(ValueError, match="SHA-256"):
        store.path_for(name)
    with pytest.raises(ValueError, match="SHA-256"):
        store.get(name)


def test_paths_stay_under_the_raw_directory(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "data")
    digest = "0123456789abcdef" * 4
    path = store.path_for(digest)
    assert path == tmp_path / "data" / "raw" / "01" / digest
    assert path.resolve().is_relative_to((tmp_path / "data" / "raw").resolve())


def test_a_missing_blob_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        RawStore(tmp_path).get("ab" * 32)
