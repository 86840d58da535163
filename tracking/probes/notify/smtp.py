"""E-mail through the operator's SMTP server (``DSTRACK_SMTP_URL``): ``smtp://`` upgrades with
STARTTLS when the server offers it, ``smtps://`` speaks TLS at once; user and password from the
URL. The server is the operator's: the private-address guard does not apply to it."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib

from tracking.core.errors import ErrorCode
from tracking.probes.notify.errors import NotifyError, describe


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """``smtp://[user:pass@]host[:port]`` (port 25) or ``smtps://…`` (port 465)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise NotifyError("DSTRACK_SMTP_URL is not a valid URL") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps") or not parts.hostname:
            raise NotifyError("DSTRACK_SMTP_URL must be smtp://host:port or smtps://host:port")
        implicit = scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit else 25),
            implicit_tls=implicit,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system's trusted roots, plus ``DSTRACK_CA_BUNDLE``'s when set."""
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


def build_message(sender: str, to: Sequence[str], subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = " ".join(subject.split())[:900]
    message["Message-ID"] = make_msgid(domain="dstrack")
    message.set_content(text)
    return message


async def send_email(
    server: SmtpServer | None,
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    text: str,
    timeout_s: float,
    context: ssl.SSLContext,
    message_id: str | None = None,
) -> None:
    """Send one plain-text message; :class:`NotifyError` when the server did not take it."""
    if server is None:
        raise NotifyError(
            "e-mail is not configured: set DSTRACK_SMTP_URL", code=ErrorCode.INVALID_INPUT
        )
    message = build_message(sender, to, subject, text)
    if message_id:
        message["X-Dstrack-Delivery"] = message_id
    try:
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            start_tls=False if server.implicit_tls else None,
            tls_context=context,
            timeout=timeout_s,
        )
    except aiosmtplib.SMTPException as exc:
        raise NotifyError(f"the mail server {server.host}:{server.port}: {describe(exc)}") from exc
    except (OSError, ssl.SSLError) as exc:
        raise NotifyError(f"the mail server {server.host}:{server.port}: {describe(exc)}") from exc
