"""RAW files on disk, content-addressed by SHA-256 under ``DSTRACK_DATA_DIR/raw``.

A blob is written to a temporary file and renamed into place, so a reader never sees half a
file and an existing blob is never overwritten (same name means same content). A data
directory that cannot be written is the operator's problem: the log says where and why, users
are told only that the update could not be saved.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tracking.core.errors import DstrackError, ErrorCode

log = logging.getLogger(__name__)

WRITERS = 8  # blobs written at once

STORAGE_FAILED_MESSAGE = (
    "The update could not be saved: dstrack cannot write its data directory "
    "(the server's log has the details)."
)


class StorageError(DstrackError):
    """The data directory cannot be written; the message names no server path."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.SAVE_FAILED, STORAGE_FAILED_MESSAGE)


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size_bytes: int


class RawStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "raw"

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256

    def put(self, content: bytes) -> StoredBlob:
        digest = hashlib.sha256(content).hexdigest()
        path = self.path_for(digest)
        try:
            if not path.exists():
                _write_new(path, content)
        except OSError as exc:
            log.error("cannot store a RAW file under %s: %s", self.root, exc)
            raise StorageError() from exc
        return StoredBlob(sha256=digest, size_bytes=len(content))

    def put_many(self, contents: Sequence[bytes]) -> list[StoredBlob]:
        """Several blobs at once: each is written and flushed to disk on its own thread (the
        fsyncs overlap: a first audit of a batch waits for the slowest, not for their sum)."""
        if len(contents) < 2:
            return [self.put(content) for content in contents]
        writes = [_writers().submit(self.put, content) for content in contents]
        wait(writes)  # all finished, failed or not, before anyone reads a result
        return [write.result() for write in writes]

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def problem(self) -> str | None:
        """Why RAW files cannot be written now (for the health check), or None."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root, prefix=".health-"):
                pass
        except OSError as exc:
            log.error("the data directory %s cannot be written: %s", self.root, exc)
            return "the data directory cannot be written"
        return None


@cache
def _writers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="raw-writer")


def _write_new(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
