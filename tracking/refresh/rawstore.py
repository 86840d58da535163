"""RAW files on disk, content-addressed by SHA-256 under ``DSTRACK_DATA_DIR/raw``.

A blob is written to a temporary file and renamed into place, so a reader never sees half a
file and an existing blob is never overwritten (same name means same content).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


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
        if not path.exists():
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
        return StoredBlob(sha256=digest, size_bytes=len(content))

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()
