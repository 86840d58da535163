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


def _large(size: int, tail: bytes) -> bytes:
    """``size`` bytes of a repeating pattern (so that only ``tail`` tells two apart)."""
    body = (bytes(range(256)) * (size // 256 + 1))[: size - len(tail)]
    return body + tail


@pytest.mark.parametrize("size", [100 * 1024, 1024 * 1024 + 7, 5 * 1024 * 1024])
def test_a_large_blob_is_addressed_by_all_of_its_content(tmp_path: Path, size: int) -> None:
    store = RawStore(tmp_path)
    content = _large(size, b"the end")

    blob = store.put(content)

    assert blob == StoredBlob(sha256=hashlib.sha256(content).hexdigest(), size_bytes=size)
    assert store.get(blob.sha256) == content
    assert store.path_for(blob.sha256).stat().st_size == size


@pytest.mark.parametrize("size", [100 * 1024, 3 * 1024 * 1024])
def test_large_blobs_differing_only_in_their_last_byte_are_two_blobs(
    tmp_path: Path, size: int
) -> None:
    store = RawStore(tmp_path)
    first, second = _large(size, b"A"), _large(size, b"B")
    assert first[:-1] == second[:-1]

    a, b = store.put(first), store.put(second)

    assert a.sha256 != b.sha256
    assert (a.sha256, b.sha256) == (
        hashlib.sha256(first).hexdigest(),
        hashlib.sha256(second).hexdigest(),
    )
    assert store.get(a.sha256) == first
    assert store.get(b.sha256) == second
    assert len(files(tmp_path)) == 2


def test_large_blobs_differing_only_in_their_first_byte_are_two_blobs(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    body = _large(200 * 1024, b"")
    contents = [b"A" + body, b"B" + body]

    digests = [store.put(content).sha256 for content in contents]

    assert len(set(digests)) == 2
    assert [store.get(d) for d in digests] == contents


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
