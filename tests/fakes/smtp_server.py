"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records the mail it receives.

Three modes (:class:`SmtpMode`): ``STARTTLS`` (plain SMTP offering STARTTLS, like port 25/587),
``PLAIN`` (no STARTTLS offered) and ``SMTPS`` (implicit TLS, like port 465). ``auth=(user,
password)`` offers AUTH PLAIN and LOGIN and accepts only that pair (after STARTTLS in
``STARTTLS`` mode, as real servers do; ``auth_require_tls=False`` lifts that). Every accepted
message is a :class:`ReceivedMessage` in ``.messages``; :meth:`FakeSmtpServer.reject_next`
makes the next N messages fail with a given code (550 permanent, 451 temporary, ...)::

    with FakeSmtpServer(auth=("alerts", "s3cret")) as smtp:
        settings = Settings(smtp_url=f"smtp://alerts:s3cret@127.0.0.1:{smtp.port}", ...)
        ...
        [mail] = smtp.wait_for_messages(1)
        assert mail.subject == "[dstrack] ..." and mail.rcpt_tos == ["ops@example.com"]

The server's certificate (``certificate``, a :class:`ServedCertificate`) is read through
STARTTLS by the probes the same way. Fixtures: ``smtp_server`` (STARTTLS), ``smtps_server``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import StrEnum
from functools import cache
from types import TracebackType
from typing import Any, Self

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.fakes import pki
from tests.fakes.tls_server import HOST, ServedCertificate, served, server_context

SMTP_HOST_NAME = "smtp.test"


@cache
def smtp_certificate() -> ServedCertificate:
    """The default certificate: ``smtp.test`` from the test CA, with its intermediate."""
    ca = pki.test_ca()
    return served(ca.leaf(SMTP_HOST_NAME), ca.intermediate)


class SmtpMode(StrEnum):
    STARTTLS = "starttls"
    PLAIN = "plain"
    SMTPS = "smtps"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted: the envelope, the parsed message and how it came."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    tls: bool  # the session was encrypted (STARTTLS or SMTPS)
    auth_user: str | None  # who authenticated, None without AUTH

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def headers(self) -> dict[str, str]:
        """Header name (lower case) -> decoded value (the last one for repeated names)."""
        return {k.lower(): str(v) for k, v in self.message.items()}

    @property
    def subject(self) -> str:
        return str(self.message["subject"] or "")

    @property
    def body(self) -> str:
        """The text/plain body (of the plain part of a multipart message), decoded, with the
        wire's CRLF line ends turned into ``\n``."""
        part = self.message.get_body(preferencelist=("plain",))
        text = "" if part is None else str(part.get_content())
        return text.replace("\r\n", "\n")


@dataclass
class _Rejection:
    remaining: int = 0
    reply: str = "550 5.7.1 Rejected by the test"


@dataclass
class _Handler:
    fake: FakeSmtpServer
    rejection: _Rejection = field(default_factory=_Rejection)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.fake._lock:
            if self.rejection.remaining > 0:
                self.rejection.remaining -= 1
                self.fake.rejected += 1
                return self.rejection.reply
            login = session.auth_data
            user = login.login.decode() if isinstance(login, LoginPassword) else None
            content = envelope.original_content or b""
            self.fake._messages.append(
                ReceivedMessage(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos),
                    raw=content,
                    tls=session.ssl is not None or _implicit_tls(server),
                    auth_user=user,
                )
            )
            self.fake._arrived.notify_all()
        return "250 2.0.0 Message accepted for delivery"


def _implicit_tls(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class _Controller(Controller):
    """aiosmtpd's controller on a socket bound beforehand, so port 0 works."""

    def __init__(self, sock: socket.socket, handler: _Handler, **kwargs: Any) -> None:
        self._sock = sock
        self.sessions: list[SMTP] = []
        super().__init__(handler, hostname=HOST, port=sock.getsockname()[1], **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)

    def factory(self) -> SMTP:
        smtp = super().factory()
        self.sessions.append(smtp)
        return smtp

    async def abort_sessions(self) -> None:
        """Cut every client connection (stop() alone leaves their transports open)."""
        for smtp in self.sessions:
            for transport in (smtp.transport, smtp._original_transport):
                if transport is not None and not transport.is_closing():
                    transport.abort()
        await asyncio.sleep(0.05)  # connection_lost() callbacks run


class FakeSmtpServer:
    """aiosmtpd in a thread; see the module docstring."""

    def __init__(
        self,
        mode: SmtpMode = SmtpMode.STARTTLS,
        *,
        auth: tuple[str, str] | None = None,
        auth_require_tls: bool | None = None,
        certificate: ServedCertificate | None = None,
        host_name: str = SMTP_HOST_NAME,
    ) -> None:
        self.mode = SmtpMode(mode)
        self.auth = auth
        self.certificate = certificate or smtp_certificate()
        self.host_name = host_name
        self.rejected = 0  # messages refused by reject_next()
        self.auth_failures = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: list[ReceivedMessage] = []
        self._handler = _Handler(self)
        if auth_require_tls is None:
            auth_require_tls = self.mode is SmtpMode.STARTTLS
        context = server_context(self.certificate)
        kwargs: dict[str, Any] = {
            "server_hostname": host_name,
            "auth_require_tls": auth_require_tls,
            "auth_exclude_mechanism": ["CRAM-MD5"],
            "ready_timeout": 10.0,
        }
        if auth is not None:
            kwargs["authenticator"] = self._authenticate
        if self.mode is SmtpMode.STARTTLS:
            kwargs["tls_context"] = context
        elif self.mode is SmtpMode.SMTPS:
            kwargs["ssl_context"] = context
        self._sock = socket.create_server((HOST, 0))
        self.port: int = self._sock.getsockname()[1]
        self.host = HOST
        self._controller = _Controller(self._sock, self._handler, **kwargs)

    # -- lifecycle --
    def start(self) -> Self:
        self._controller.start()
        return self

    def close(self) -> None:
        controller = self._controller
        if controller._thread is not None:
            asyncio.run_coroutine_threadsafe(controller.abort_sessions(), controller.loop).result(5)
            controller.stop()
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what tests use --
    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:PORT`` (``smtps://`` in SMTPS mode), with the user when AUTH is on."""
        scheme = "smtps" if self.mode is SmtpMode.SMTPS else "smtp"
        user = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        return f"{scheme}://{user}{HOST}:{self.port}"

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def reject_next(self, count: int = 1, reply: str = "550 5.7.1 Rejected by the test") -> None:
        """Answer the DATA of the next ``count`` messages with ``reply`` (e.g. ``"451 4.3.0
        Try again later"``) instead of accepting them."""
        with self._lock:
            self._handler.rejection = _Rejection(count, reply)

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """The messages once at least ``count`` arrived; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self._messages)} message(s), expected {count}")
                self._arrived.wait(left)
            return list(self._messages)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        del server, session, envelope, mechanism
        ok = (
            isinstance(data, LoginPassword)
            and self.auth is not None
            and (data.login.decode(), data.password.decode()) == self.auth
        )
        if not ok:
            self.auth_failures += 1
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


# -- pytest fixtures ----------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtpServer]:
    """Plain SMTP offering STARTTLS, no AUTH."""
    with FakeSmtpServer() as server:
        yield server


@pytest.fixture
def smtps_server() -> Iterator[FakeSmtpServer]:
    """Implicit-TLS SMTP, no AUTH."""
    with FakeSmtpServer(SmtpMode.SMTPS) as server:
        yield server
