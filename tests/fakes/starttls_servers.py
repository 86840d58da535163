"""Servers that speak a protocol's plain-text start up to the TLS handshake, on 127.0.0.1.

Each follows its RFC's exchange far enough for a real client (imaplib, poplib, ftplib,
``openssl s_client -starttls``) to upgrade, then serves its certificate:

* :class:`SmtpServer` (RFC 3207: ``220``, ``EHLO`` lists ``STARTTLS``, ``STARTTLS`` ->
  ``220``; the working mail server is :mod:`tests.fakes.smtp_server`);
* :class:`ImapServer` (RFC 9051: ``* OK`` greeting, ``CAPABILITY`` lists ``STARTTLS``,
  ``STARTTLS`` -> ``OK``);
* :class:`Pop3Server` (RFC 2595: ``+OK``, ``CAPA`` lists ``STLS``, ``STLS`` -> ``+OK``);
* :class:`FtpServer` (RFC 4217: ``220``, ``AUTH TLS`` -> ``234``);
* :class:`XmppServer`, :class:`LdapServer` and :class:`PostgresServer`, where the client speaks
  first, in :mod:`tests.fakes.starttls_client_first`.

``behaviour`` (a :class:`Behaviour`) makes the same server offer no STARTTLS, speak TLS at
once (IMAPS, POP3S, LDAPS...), or misbehave: talk forever without ending a line, send a
greeting line of several MiB, or never say a word::

    with ImapServer() as imap:                       # imap://127.0.0.1:{imap.port}
        ...
    with ImapServer(Behaviour.IMPLICIT_TLS) as imaps:  # imaps://
        ...
    with server_for("pop3", Behaviour.HUGE_LINE) as pop3:
        ...

Each connection is a :class:`Session` in ``.connections``: what the client sent
(``received``), whether the TLS handshake completed (``handshake_ok``) and the SNI
(``server_name``). Fixtures: ``imap_server``, ``imaps_server``, ``pop3_server``,
``pop3s_server``, ``ftp_server`` (``xmpp_server``, ``ldap_server``, ``ldaps_server``,
``postgres_fake_server`` in :mod:`tests.fakes.starttls_client_first`), and ``starttls_server``, a
factory: ``starttls_server("ldap", Behaviour.SILENT)`` starts one, closed after the test.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import ClassVar

import pytest

from tests.fakes import pki
from tests.fakes.tls_server import (
    HOLD_S,
    Connection,
    ServedCertificate,
    _drain,
    _ThreadedServer,
    served,
    server_context,
)

HUGE_LINE_SIZE = 4 * 1024 * 1024  # a greeting line this long, then silence
TALK_LIMIT = 64 * 1024 * 1024  # talking forever stops after this much (or HOLD_S, or close())
LINE_LIMIT = 64 * 1024  # longer client lines end the session


class Behaviour(StrEnum):
    STARTTLS = "starttls"  # the RFC's exchange, then the TLS handshake
    NO_STARTTLS = "no_starttls"  # does not offer STARTTLS and refuses it
    IMPLICIT_TLS = "implicit_tls"  # TLS at once, then the protocol inside (imaps, pop3s, ldaps)
    TALKS_FOREVER = "talks_forever"  # streams bytes, never ending a line or a greeting
    HUGE_LINE = "huge_line"  # a first line (or message) of HUGE_LINE_SIZE bytes, then silence
    SILENT = "silent"  # accepts and never sends a byte


HOSTILE = (Behaviour.TALKS_FOREVER, Behaviour.HUGE_LINE, Behaviour.SILENT)


@dataclass
class Session(Connection):
    """One connection: the :class:`Connection` fields plus what the client sent."""

    received: list[str] = field(default_factory=list)


@cache
def certificate_for(host_name: str) -> ServedCertificate:
    """A leaf for ``host_name`` from the test CA, sent with its intermediate."""
    ca = pki.test_ca()
    return served(ca.leaf(host_name), ca.intermediate)


class Wire:
    """A connection's socket with a read buffer, bounded reads and the switch to TLS."""

    def __init__(self, server: StartTlsServer, sock: socket.socket, record: Session) -> None:
        self.server, self.sock, self.record = server, sock, record
        self.buffer = b""
        self.tls = False

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def until(self, marker: bytes, limit: int = LINE_LIMIT) -> bytes | None:
        """Bytes up to and including ``marker``; None on EOF or past ``limit``."""
        while (end := self.buffer.find(marker)) < 0:
            if len(self.buffer) > limit or not self._fill():
                return None
        end += len(marker)
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self._fill():
                return None
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def line(self) -> str | None:
        """A CRLF (or LF) terminated line without its end, recorded in the session."""
        raw = self.until(b"\n")
        if raw is None:
            return None
        text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
        self.record.received.append(text)
        return text

    def start_tls(self) -> bool:
        """The server side of the handshake; False (and the error recorded) when it fails."""
        self.buffer = b""  # RFC 3207 & co.: what came before the handshake is dropped
        tls = self.server.wrap(self.sock, self.record)
        if tls is None:
            return False
        self.sock, self.tls = tls, True
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.record.error = repr(exc)
            return False
        self.record.handshake_ok = True
        return True


class StartTlsServer(_ThreadedServer):
    """The common part: behaviours, certificate, TLS; a protocol implements the dialogue."""

    record_type = Session
    protocol: ClassVar[str]  # the name ``openssl s_client -starttls`` knows it by
    host_name: ClassVar[str]
    client_speaks_first: ClassVar[bool] = False
    line_end: ClassVar[bytes] = b"\r\n"

    def __init__(
        self,
        behaviour: Behaviour = Behaviour.STARTTLS,
        *,
        certificate: ServedCertificate | None = None,
    ) -> None:
        super().__init__()
        self.behaviour = Behaviour(behaviour)
        self.certificate = certificate or certificate_for(self.host_name)
        self.context = server_context(self.certificate)
        self.context.sni_callback = _record_sni

    @property
    def offers_starttls(self) -> bool:
        return self.behaviour is Behaviour.STARTTLS

    @property
    def sessions(self) -> list[Session]:
        return self.connections  # type: ignore[return-value]

    def wrap(self, sock: socket.socket, record: Session) -> ssl.SSLSocket | None:
        with self._lock:  # close() must be able to cut whichever socket is in use
            if self._closing:
                return None
            tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            self._open.discard(sock)
            self._open.add(tls)
        tls._dstrack_record = record  # type: ignore[attr-defined]  # read by _record_sni
        return tls

    def handle(self, conn: socket.socket, record: Connection) -> None:
        assert isinstance(record, Session)
        wire = Wire(self, conn, record)
        try:
            self._handle(wire)
        finally:
            if wire.tls:
                with self._lock:
                    self._open.discard(wire.sock)
                wire.sock.close()

    def _handle(self, wire: Wire) -> None:
        if self.behaviour is Behaviour.SILENT:
            _drain(wire.sock)
            return
        if self.behaviour in HOSTILE:
            if self.client_speaks_first and not wire._fill():
                return
            if self.behaviour is Behaviour.HUGE_LINE:
                wire.send(self.huge_message())
                _drain(wire.sock)
            else:
                self._talk_forever(wire)
            return
        if self.behaviour is Behaviour.IMPLICIT_TLS:
            if wire.start_tls():
                self.converse(wire, greet=True)
            return
        if self.converse(wire, greet=True) and wire.start_tls():
            self.converse(wire, greet=False)

    def _talk_forever(self, wire: Wire) -> None:
        wire.send(self.talk_prefix())
        chunk, sent, deadline = b"x" * 65536, 0, time.monotonic() + HOLD_S
        while sent < TALK_LIMIT and time.monotonic() < deadline and not self._closing:
            wire.send(chunk)
            sent += len(chunk)

    # -- what a protocol defines ---------------------------------------------------------------

    def converse(self, wire: Wire, *, greet: bool) -> bool:
        """The dialogue in clear or in TLS (``wire.tls``), opening with the server's greeting
        when ``greet`` (not after STARTTLS); True when the TLS handshake is to start."""
        raise NotImplementedError

    def talk_prefix(self) -> bytes:
        """How the endless talk starts (a greeting that then never ends)."""
        raise NotImplementedError

    def huge_message(self) -> bytes:
        return self.talk_prefix() + b"x" * HUGE_LINE_SIZE + self.line_end


def _record_sni(
    tls: ssl.SSLSocket | ssl.SSLObject, server_name: str | None, _: ssl.SSLContext
) -> None:
    record = getattr(tls, "_dstrack_record", None)
    if record is not None:
        record.server_name = server_name


# -- IMAP, POP3, FTP ------------------------------------------------------------------------------


class ImapServer(StartTlsServer):
    """IMAP4rev1 up to STARTTLS (or IMAPS); answers CAPABILITY, NOOP, LOGOUT, and BAD else."""

    protocol = "imap"
    host_name = "imap.test"
    GREETING = "* OK dstrack test IMAP4rev1 server ready\r\n"

    def talk_prefix(self) -> bytes:
        return b"* OK "

    def converse(self, wire: Wire, *, greet: bool) -> bool:
        if greet:
            wire.send(self.GREETING)
        while (line := wire.line()) is not None:
            tag, _, rest = line.partition(" ")
            command = rest.split(" ", 1)[0].upper()
            if not rest:
                wire.send("* BAD Missing command\r\n")
            elif command == "CAPABILITY":
                wire.send(f"* CAPABILITY {self.capabilities(wire)}\r\n{tag} OK CAPABILITY done\r\n")
            elif command == "STARTTLS" and self.offers_starttls and not wire.tls:
                wire.send(f"{tag} OK Begin TLS negotiation now\r\n")
                return True
            elif command == "STARTTLS":
                wire.send(f"{tag} BAD STARTTLS not available\r\n")
            elif command == "NOOP":
                wire.send(f"{tag} OK NOOP done\r\n")
            elif command == "LOGOUT":
                wire.send(f"* BYE Logging out\r\n{tag} OK LOGOUT done\r\n")
                return False
            else:
                wire.send(f"{tag} BAD Unknown command\r\n")
        return False

    def capabilities(self, wire: Wire) -> str:
        if self.offers_starttls and not wire.tls:
            return "IMAP4rev1 STARTTLS LOGINDISABLED"
        return "IMAP4rev1 AUTH=PLAIN"


class Pop3Server(StartTlsServer):
    """POP3 up to STLS (or POP3S); answers CAPA, NOOP, QUIT, and -ERR else."""

    protocol = "pop3"
    host_name = "pop3.test"
    GREETING = "+OK dstrack test POP3 server ready\r\n"

    def talk_prefix(self) -> bytes:
        return b"+OK "

    def converse(self, wire: Wire, *, greet: bool) -> bool:
        if greet:
            wire.send(self.GREETING)
        while (line := wire.line()) is not None:
            command = line.split(" ", 1)[0].upper()
            if command == "CAPA":
                stls = "STLS\r\n" if self.offers_starttls and not wire.tls else ""
                wire.send(f"+OK Capability list follows\r\nTOP\r\nUSER\r\n{stls}.\r\n")
            elif command == "STLS" and self.offers_starttls and not wire.tls:
                wire.send("+OK Begin TLS negotiation\r\n")
                return True
            elif command == "STLS":
                wire.send("-ERR STLS not available\r\n")
            elif command == "NOOP":
                wire.send("+OK\r\n")
            elif command == "QUIT":
                wire.send("+OK Bye\r\n")
                return False
            else:
                wire.send("-ERR Unknown command\r\n")
        return False


class FtpServer(StartTlsServer):
    """FTP up to AUTH TLS; answers FEAT, PBSZ, PROT, USER, PASS, NOOP, QUIT, and 502 else."""

    protocol = "ftp"
    host_name = "ftp.test"
    GREETING = "220 dstrack test FTP server ready\r\n"

    def talk_prefix(self) -> bytes:
        return b"220 "

    def converse(self, wire: Wire, *, greet: bool) -> bool:
        if greet:
            wire.send(self.GREETING)
        while (line := wire.line()) is not None:
            command, _, argument = line.partition(" ")
            command = command.upper()
            if command == "FEAT":
                auth = " AUTH TLS\r\n" if self.offers_starttls else ""
                wire.send(f"211-Features:\r\n{auth} PBSZ\r\n PROT\r\n UTF8\r\n211 End\r\n")
            elif command == "AUTH" and argument.upper() in ("TLS", "SSL", "TLS-C"):
                if not self.offers_starttls or wire.tls:
                    wire.send("502 AUTH not available\r\n")
                    continue
                wire.send("234 AUTH TLS successful\r\n")
                return True
            elif command in ("PBSZ", "PROT", "NOOP", "TYPE"):
                wire.send(f"200 {command} OK\r\n")
            elif command == "USER":
                wire.send("331 Password required\r\n")
            elif command == "PASS":
                wire.send("230 Logged in\r\n")
            elif command == "QUIT":
                wire.send("221 Goodbye\r\n")
                return False
            else:
                wire.send("502 Command not implemented\r\n")
        return False


class SmtpServer(StartTlsServer):
    """ESMTP up to STARTTLS (RFC 3207) or SMTPS, for the hostile and refusing variants (a
    working mail server is :class:`tests.fakes.smtp_server.FakeSmtpServer`); answers EHLO,
    HELO, NOOP, RSET, QUIT, and 502 else."""

    protocol = "smtp"
    host_name = "smtp.test"
    GREETING = "220 smtp.test ESMTP dstrack test server\r\n"

    def talk_prefix(self) -> bytes:
        return b"220 "

    def converse(self, wire: Wire, *, greet: bool) -> bool:
        if greet:
            wire.send(self.GREETING)
        while (line := wire.line()) is not None:
            command = line.split(" ", 1)[0].upper()
            if command == "EHLO":
                starttls = "250-STARTTLS\r\n" if self.offers_starttls and not wire.tls else ""
                wire.send(f"250-smtp.test\r\n{starttls}250-8BITMIME\r\n250 SIZE 10240000\r\n")
            elif command == "HELO":
                wire.send("250 smtp.test\r\n")
            elif command == "STARTTLS" and self.offers_starttls and not wire.tls:
                wire.send("220 2.0.0 Ready to start TLS\r\n")
                return True
            elif command in ("NOOP", "RSET"):
                wire.send("250 2.0.0 OK\r\n")
            elif command == "QUIT":
                wire.send("221 2.0.0 Bye\r\n")
                return False
            else:
                wire.send("502 5.5.1 Command not implemented\r\n")
        return False


# -- choosing a server ----------------------------------------------------------------------------


def server_classes() -> dict[str, type[StartTlsServer]]:
    """Server class by protocol name (``openssl s_client -starttls`` names)."""
    from tests.fakes.starttls_client_first import LdapServer, PostgresServer, XmppServer

    classes: list[type[StartTlsServer]] = [
        SmtpServer, ImapServer, Pop3Server, FtpServer, XmppServer, LdapServer, PostgresServer,
    ]  # fmt: skip
    return {c.protocol: c for c in classes}


IMPLICIT_SCHEMES = {"smtps": "smtp", "imaps": "imap", "pop3s": "pop3", "ldaps": "ldap"}
ALIASES = {"submission": "smtp", "postgresql": "postgres"}


def server_for(scheme: str, behaviour: Behaviour | None = None, **kwargs: object) -> StartTlsServer:
    """A server for a URL scheme (``smtp``, ``submission``, ``smtps``, ``imap``, ``imaps``,
    ``pop3``, ``pop3s``, ``ftp``, ``ldap``, ``ldaps``, ``xmpp``, ``postgres``, ``postgresql``);
    the ``...s`` schemes default to IMPLICIT_TLS, the others to STARTTLS."""
    protocol = IMPLICIT_SCHEMES.get(scheme) or ALIASES.get(scheme, scheme)
    if behaviour is None:
        behaviour = Behaviour.IMPLICIT_TLS if scheme in IMPLICIT_SCHEMES else Behaviour.STARTTLS
    return server_classes()[protocol](behaviour, **kwargs)  # type: ignore[arg-type]


# -- pytest fixtures ----------------------------------------------------------------------------


@pytest.fixture
def starttls_server() -> Iterator[Callable[..., StartTlsServer]]:
    """A factory: ``starttls_server("imap", Behaviour.HUGE_LINE)`` returns a started server,
    closed at the end of the test."""
    started: list[StartTlsServer] = []

    def start(scheme: str, behaviour: Behaviour | None = None, **kwargs: object) -> StartTlsServer:
        server = server_for(scheme, behaviour, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def scheme_fixture(scheme: str) -> Callable[[], Iterator[StartTlsServer]]:
    def fixture() -> Iterator[StartTlsServer]:
        with server_for(scheme) as server:
            yield server

    fixture.__doc__ = f"A {scheme}:// server (see :func:`server_for`)."
    return fixture


imap_server = pytest.fixture(scheme_fixture("imap"), name="imap_server")
imaps_server = pytest.fixture(scheme_fixture("imaps"), name="imaps_server")
pop3_server = pytest.fixture(scheme_fixture("pop3"), name="pop3_server")
pop3s_server = pytest.fixture(scheme_fixture("pop3s"), name="pop3s_server")
ftp_server = pytest.fixture(scheme_fixture("ftp"), name="ftp_server")
