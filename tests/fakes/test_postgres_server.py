"""The real PostgreSQL TLS server through psycopg (sslmode=require / verify-ca) and openssl."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import psycopg
import pytest

from tests.fakes import pki
from tests.fakes.clients import needs_openssl, s_client_chain
from tests.fakes.postgres_server import PostgresTlsServer, pg_bin, wait_gone
from tests.fakes.postgres_server import postgres_tls_server as postgres_tls_server  # fixture
from tests.fakes.starttls_client_first import ssl_request

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL is not installed")


def test_psycopg_connects_over_tls_and_verifies_the_chain(
    postgres_tls_server: PostgresTlsServer, tmp_path: Path
) -> None:
    root = tmp_path / "root.pem"
    root.write_text(pki.test_ca().root.pem)
    dsn = f"{postgres_tls_server.dsn} sslmode=verify-ca sslrootcert={root} connect_timeout=10"
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
    assert row is not None and row[0] is True and row[1].startswith("TLSv1")


@needs_openssl
def test_openssl_starttls_postgres_reads_the_chain(postgres_tls_server: PostgresTlsServer) -> None:
    chain = s_client_chain(postgres_tls_server.port, starttls="postgres")
    assert chain == list(postgres_tls_server.certificate.certificates)


def test_without_ssl_the_server_says_n_and_require_fails() -> None:
    started = time.monotonic()
    with PostgresTlsServer(ssl=False) as server:
        elapsed = time.monotonic() - started
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.sendall(ssl_request())
            assert sock.recv(1) == b"N"
        with pytest.raises(psycopg.OperationalError, match="SSL"):
            psycopg.connect(f"{server.dsn} sslmode=require connect_timeout=10").close()
        with psycopg.connect(f"{server.dsn} sslmode=disable connect_timeout=10") as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        port = server.port
    assert elapsed < 15, f"start-up took {elapsed:.1f} s"
    assert wait_gone(port)
