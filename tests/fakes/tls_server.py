"""Local TCP/TLS servers for probe tests, each on 127.0.0.1 with an ephemeral port.

* :class:`FakeTlsServer` - a real TLS server choosing its certificate chain by SNI, with a default
  chain for unknown or absent SNI. It never verifies anything, so expired, self-signed and
  wrong-name certificates are served like any other.
* :class:`NonTlsServer` - answers with plain HTTP text, then closes.
* :class:`SilentServer` - accepts TCP connections and never sends a byte.
* :class:`ClosedPort` - a port nothing listens on (connections are refused).

Servers run in background threads with blocking sockets, so sync and async tests can both use
them. Every one is a context manager and records the connections it accepted; closing a server
closes every socket it opened (pytest runs with ``filterwarnings = error``).

Fixtures: ``tls_server`` (:func:`FakeTlsServer.standard`), ``non_tls_server``,
``silent_server`` and ``closed_port``. Import them into a test module or list this module in
``pytest_plugins``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import select
import socket
import ssl
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.fakes import pki

HOST = "127.0.0.1"
# How long a server keeps an idle connection open; closing the server cuts it short anyway.
HOLD_S = 10.0


@dataclass(frozen=True)
class ServedCertificate:
    """What a TLS server sends: a leaf and its chain, leaf first, plus the leaf's key."""

    chain: tuple[pki.Issued, ...]

    @property
    def leaf(self) -> pki.Issued:
        return self.chain[0]

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        return tuple(issued.cert for issued in self.chain)

    @property
    def chain_der(self) -> tuple[bytes, ...]:
        return tuple(c.public_bytes(serialization.Encoding.DER) for c in self.certificates)

    @property
    def chain_pem(self) -> str:
        return "".join(issued.pem for issued in self.chain)

    @property
    def key_pem(self) -> bytes:
        return self.leaf.key_pem


def served(leaf: pki.Issued, *chain: pki.Issued) -> ServedCertificate:
    return ServedCertificate((leaf, *chain))


# Server names of the standard scenarios (FakeTlsServer.standard()).
GOOD = "good.test"  # leaf + intermediate, valid
EXPIRED = "expired.test"  # leaf + intermediate, expired 70 days ago
SELF_SIGNED = "self-signed.test"  # a lone self-signed certificate
WRONG_HOST = "wrong-host.test"  # a valid certificate for OTHER_HOST
OTHER_HOST = "other.test"
DEFAULT = "default.test"  # served for unknown or absent SNI


@cache
def standard_certificates() -> Mapping[str, ServedCertificate]:
    """The standard scenarios by server name, built once so tests can compare the DER."""
    ca = pki.test_ca()
    expired_from = pki.NOW - dt.timedelta(days=100)
    return {
        GOOD: served(ca.leaf(GOOD), ca.intermediate),
        EXPIRED: served(ca.leaf(EXPIRED, not_before=expired_from, days=30), ca.intermediate),
        SELF_SIGNED: served(pki.issue(pki.name(SELF_SIGNED), dns_names=[SELF_SIGNED], key_slot=4)),
        WRONG_HOST: served(ca.leaf(OTHER_HOST), ca.intermediate),
    }


@cache
def default_certificate() -> ServedCertificate:
    ca = pki.test_ca()
    return served(ca.leaf(DEFAULT), ca.intermediate)


@dataclass
class Connection:
    """One accepted TCP connection, as the server saw it."""

    peer: tuple[str, int]
    server_name: str | None = None  # SNI received (None when absent or not TLS)
    handshake_ok: bool = False
    error: str | None = None


class _ThreadedServer:
    """Accepts connections in a thread and handles each one in its own thread."""

    record_type: type[Connection] = Connection  # what a subclass records per connection

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._connections: list[Connection] = []
        self._closing = False
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        listener = socket.create_server((self.host, 0))
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept_loop, listener)
        return self

    def close(self) -> None:
        """Stop accepting, cut every open connection, join every thread."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            # shutdown() wakes a thread blocked reading the socket; its owner then closes it.
            for sock in self._open:
                _quietly_shutdown(sock)
        self._wake_w.send(b"x")
        for thread in self._threads:
            thread.join()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what tests look at ---------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def connections(self) -> list[Connection]:
        with self._lock:
            return list(self._connections)

    # -- internals ------------------------------------------------------------------------------

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        with listener:
            while True:
                readable, _, _ = select.select([listener, self._wake_r], [], [])
                if self._wake_r in readable:
                    return
                try:
                    conn, peer = listener.accept()
                except OSError:  # the client gave up between select() and accept()
                    continue
                record = self.record_type(peer=peer[:2])
                with self._lock:
                    if self._closing:
                        conn.close()
                        return
                    self._open.add(conn)
                    self._connections.append(record)
                    self._spawn(self._serve, conn, record)

    def _serve(self, conn: socket.socket, record: Connection) -> None:
        try:
            conn.settimeout(HOLD_S)
            self.handle(conn, record)
        except OSError as exc:
            record.error = record.error or repr(exc)
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def handle(self, conn: socket.socket, record: Connection) -> None:
        raise NotImplementedError


def server_context(
    cert: ServedCertificate,
    minimum_version: ssl.TLSVersion | None = None,
    maximum_version: ssl.TLSVersion | None = None,
    *,
    stem: Path | None = None,
) -> ssl.SSLContext:
    """A server-side context sending ``cert``'s chain; weak keys and old protocols welcome.

    ``load_cert_chain()`` only reads files: they go to ``stem`` (.crt/.key) or a temporary
    directory removed at once.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated, which is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum_version is not None:
            context.minimum_version = minimum_version
        if maximum_version is not None:
            context.maximum_version = maximum_version
    with tempfile.TemporaryDirectory(prefix="dstrack-tls-") as tmp:
        stem = stem or Path(tmp) / "server"
        stem.with_suffix(".crt").write_text(cert.chain_pem)
        stem.with_suffix(".key").write_bytes(cert.key_pem)
        context.load_cert_chain(stem.with_suffix(".crt"), stem.with_suffix(".key"))
    return context


class FakeTlsServer(_ThreadedServer):
    """A TLS server choosing the chain it sends by SNI; ``default`` for unknown or absent SNI.

    ``minimum_version``/``maximum_version`` restrict the protocol, e.g. to act as an old server.
    """

    def __init__(
        self,
        certificates: Mapping[str, ServedCertificate],
        default: ServedCertificate | None = None,
        *,
        host: str = HOST,
        minimum_version: ssl.TLSVersion | None = None,
        maximum_version: ssl.TLSVersion | None = None,
    ) -> None:
        super().__init__(host)
        self.certificates = {name.lower(): cert for name, cert in certificates.items()}
        self.default = default or default_certificate()
        self._versions = (minimum_version, maximum_version)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._default_context: ssl.SSLContext | None = None

    @classmethod
    def standard(cls, **kwargs: object) -> FakeTlsServer:
        """The standard scenarios: GOOD, EXPIRED, SELF_SIGNED, WRONG_HOST, DEFAULT otherwise."""
        return cls(standard_certificates(), default_certificate(), **kwargs)  # type: ignore[arg-type]

    @property
    def server_names_seen(self) -> list[str | None]:
        return [c.server_name for c in self.connections]

    def start(self) -> Self:
        # load_cert_chain() only reads files; the contexts keep what they loaded.
        with tempfile.TemporaryDirectory(prefix="dstrack-tls-") as tmp:
            self._default_context = self._context(self.default, Path(tmp) / "default")
            for i, (name, cert) in enumerate(self.certificates.items()):
                self._contexts[name] = self._context(cert, Path(tmp) / str(i))
        self._default_context.sni_callback = self._pick_certificate
        return super().start()

    def _context(self, cert: ServedCertificate, stem: Path) -> ssl.SSLContext:
        return server_context(cert, *self._versions, stem=stem)

    def _pick_certificate(
        self, tls: ssl.SSLSocket | ssl.SSLObject, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        record = getattr(tls, "_dstrack_record", None)
        if record is not None:
            record.server_name = server_name
        context = self._contexts.get((server_name or "").lower())
        if context is not None:
            tls.context = context

    def handle(self, conn: socket.socket, record: Connection) -> None:
        assert self._default_context is not None
        with self._lock:  # close() must be able to cut whichever socket is in use
            if self._closing:
                return
            tls = self._default_context.wrap_socket(
                conn, server_side=True, do_handshake_on_connect=False
            )
            self._open.discard(conn)
            self._open.add(tls)
        tls._dstrack_record = record  # type: ignore[attr-defined]  # read by the SNI callback
        try:
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                record.error = repr(exc)
                return
            record.handshake_ok = True
            _drain(tls)
        finally:
            with self._lock:
                self._open.discard(tls)
            tls.close()


class NonTlsServer(_ThreadedServer):
    """Reads what the client sends first, answers in plain HTTP, then closes."""

    RESPONSE = (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
        b"Connection: close\r\n\r\nnot TLS here"
    )

    def handle(self, conn: socket.socket, record: Connection) -> None:
        conn.settimeout(1.0)
        with contextlib.suppress(TimeoutError):
            conn.recv(4096)
        conn.sendall(self.RESPONSE)
        # Half-close and drain, so the client reads the answer rather than a reset.
        conn.shutdown(socket.SHUT_WR)
        _drain(conn)


class SilentServer(_ThreadedServer):
    """Accepts connections and never sends anything; holds them until the client leaves."""

    def handle(self, conn: socket.socket, record: Connection) -> None:
        _drain(conn)


class ClosedPort:
    """A port on 127.0.0.1 where connections are refused.

    Bound but not listening: the kernel answers a SYN with a reset, and since the port stays
    reserved while this object is open, no other test can start listening on it meanwhile.
    """

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self.port: int = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _drain(sock: socket.socket) -> None:
    """Read and discard until the peer closes, the hold time passes or the server closes."""
    try:
        while sock.recv(4096):
            pass
    except (OSError, ValueError):
        pass


def _quietly_shutdown(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for an SSLSocket (whose own drops its TLS state).
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# -- pytest fixtures ----------------------------------------------------------------------------


@pytest.fixture
def tls_server() -> Iterator[FakeTlsServer]:
    """A :meth:`FakeTlsServer.standard` server (GOOD, EXPIRED, SELF_SIGNED, WRONG_HOST)."""
    with FakeTlsServer.standard() as server:
        yield server


@pytest.fixture
def non_tls_server() -> Iterator[NonTlsServer]:
    with NonTlsServer() as server:
        yield server


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


@pytest.fixture
def closed_port() -> Iterator[int]:
    with ClosedPort() as port:
        yield port.port
