"""The fake servers themselves: what they serve, and that closing them is prompt and complete."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

import pytest

from tests.fakes import tls_server as fake
from tests.fakes.tls_server import ClosedPort, FakeTlsServer, NonTlsServer, SilentServer


def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def served_leaf(server: FakeTlsServer, server_name: str | None) -> bytes | None:
    with (
        socket.create_connection(server.address, timeout=5) as raw,
        client_context().wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return tls.getpeercert(binary_form=True)


def test_sni_lookup_ignores_case_and_falls_back_to_default() -> None:
    with FakeTlsServer.standard() as server:
        assert (
            served_leaf(server, "GOOD.test") == fake.standard_certificates()[fake.GOOD].chain_der[0]
        )
        assert served_leaf(server, "nope.test") == fake.default_certificate().chain_der[0]
        assert served_leaf(server, None) == fake.default_certificate().chain_der[0]

    assert server.server_names_seen == ["GOOD.test", "nope.test", None]
    assert all(c.handshake_ok for c in server.connections)


@pytest.mark.parametrize("server_class", [FakeTlsServer.standard, NonTlsServer, SilentServer])
def test_close_cuts_idle_connections_promptly(
    server_class: Callable[[], FakeTlsServer | NonTlsServer | SilentServer],
) -> None:
    server = server_class().start()
    with socket.create_connection(server.address, timeout=5):  # connected, never speaks TLS
        time.sleep(0.05)
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 1.0
    assert len(server.connections) == 1


def test_non_tls_server_answers_in_http() -> None:
    with NonTlsServer() as server, socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01hello")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")


def test_closed_port_refuses() -> None:
    with ClosedPort() as port, pytest.raises(ConnectionRefusedError):
        socket.create_connection((port.host, port.port), timeout=5).close()
