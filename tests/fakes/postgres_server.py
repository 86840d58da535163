"""A real PostgreSQL server with TLS for tests: its own small cluster on 127.0.0.1.

``initdb`` in a temporary directory (owned by the ``postgres`` user and run through
``runuser`` when the tests run as root, as PostgreSQL refuses root), then ``pg_ctl start`` on a
free port with ``ssl=on`` and a certificate from :mod:`tests.fakes.pki` (``postgres.test``
with its intermediate). Trust authentication for user ``postgres``; ``ssl=False`` makes a
server that answers an SSLRequest with ``N``::

    with PostgresTlsServer() as pg:
        psycopg.connect(pg.dsn + " sslmode=require")       # or pg.url for SQLAlchemy
        ... probe f"postgres://127.0.0.1:{pg.port}" ...

It needs PostgreSQL's server binaries (Debian's ``postgresql`` package, as for the test
suite's PostgreSQL run); the fixture ``postgres_tls_server`` skips without them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from tests.fakes.starttls_servers import certificate_for
from tests.fakes.tls_server import HOST, ServedCertificate

HOST_NAME = "postgres.test"


def pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb, or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class PostgresTlsServer:
    """See the module docstring. ``start()`` takes about 2 s (``initdb`` is most of it)."""

    def __init__(self, *, ssl: bool = True, certificate: ServedCertificate | None = None) -> None:
        self.ssl = ssl
        self.certificate = certificate or certificate_for(HOST_NAME)
        self.host = HOST
        self.port = 0
        self._tmp: Path | None = None
        self._bin = pg_bin()

    @property
    def data_dir(self) -> Path:
        assert self._tmp is not None
        return self._tmp / "data"

    @property
    def url(self) -> str:
        """A SQLAlchemy URL (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        """A libpq connection string; add ``sslmode=...``."""
        return f"host={self.host} port={self.port} user=postgres dbname=postgres"

    def start(self, attempts: int = 3) -> Self:
        if self._bin is None:
            raise RuntimeError("PostgreSQL's server binaries are not installed")
        self._tmp = Path(tempfile.mkdtemp(prefix="dstrack-pgtls-"))
        try:
            self._initdb()
            for attempt in range(attempts):
                self.port = _free_port()
                if self._pg_ctl_start():
                    return self
                if attempt == attempts - 1:
                    log = (self._tmp / "server.log").read_text(errors="replace")
                    raise RuntimeError(f"PostgreSQL did not start:\n{log}")
        except BaseException:
            self.close()
            raise
        return self

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _as_owner(list(command)), capture_output=True, text=True, timeout=timeout, check=False
        )

    def _initdb(self) -> None:
        assert self._tmp is not None and self._bin is not None
        if os.geteuid() == 0:
            shutil.chown(self._tmp, "postgres")
        done = self._run(
            str(self._bin / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8", "--no-instructions",
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr}")
        crt, key = self.data_dir / "server.crt", self.data_dir / "server.key"
        crt.write_text(self.certificate.chain_pem)
        key.write_bytes(self.certificate.key_pem)
        key.chmod(0o600)
        if os.geteuid() == 0:
            for path in (crt, key):
                shutil.chown(path, "postgres")

    def _pg_ctl_start(self) -> bool:
        assert self._tmp is not None and self._bin is not None
        options = (
            f"-p {self.port} -k {self._tmp} -c listen_addresses={self.host} "
            f"-c ssl={'on' if self.ssl else 'off'} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=20 -c shared_buffers=16MB"
        )
        log = str(self._tmp / "server.log")
        done = self._run(
            str(self._bin / "pg_ctl"), "-D", str(self.data_dir), "-l", log,
            "-w", "-t", "30", "-o", options, "start",
        )  # fmt: skip
        return done.returncode == 0

    def close(self) -> None:
        if self._tmp is None:
            return
        if self._bin is not None and (self.data_dir / "postmaster.pid").exists():
            self._run(
                str(self._bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"
            )
        with contextlib.suppress(OSError):
            shutil.rmtree(self._tmp)
        self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@pytest.fixture(scope="session")
def postgres_tls_server() -> Iterator[PostgresTlsServer]:
    """One TLS PostgreSQL server for the session (skipped when PostgreSQL is not installed)."""
    if pg_bin() is None:
        pytest.skip("PostgreSQL's server binaries are not installed")
    with PostgresTlsServer() as server:
        yield server


def wait_gone(port: int, timeout: float = 5.0) -> bool:
    """True once nothing accepts connections on ``port`` any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
        except OSError:
            return True
        time.sleep(0.05)
    return False
