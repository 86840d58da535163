"""One STARTTLS opener per protocol, and the table the TLS probe picks them from.

Each opener speaks its protocol's plain-text start up to the TLS handshake and no further
(sslyze's ``opportunistic_tls_helpers`` style): greet, ask, read the answer, hand over. The
implicit-TLS protocols (``tls``, ``https``, ``smtps``, ``imaps``, ``pop3s``, ``ldaps``) use
the do-nothing :class:`Opener`. Adding a protocol is one class here (or in
``openers_client_first`` when the client speaks first), one entry in :data:`OPENERS`, and its
scheme with its default port in ``tracking.core.sources.SCHEMES``.

Standard-library clients (smtplib, imaplib, poplib, ftplib) are blocking, read without a bound
on a reply's number of lines and do their own TLS; none hands over the raw socket for our
handshake, so these few exchanges are written here, each from its RFC.
"""

from __future__ import annotations

from tracking.probes.openers_client_first import LdapOpener, PostgresOpener, XmppOpener
from tracking.probes.openers_wire import (
    ExchangeFailed,
    Opener,
    StartTlsRefused,
    Wire,
    read_reply,
)

__all__ = ["OPENERS", "ExchangeFailed", "Opener", "StartTlsRefused", "Wire", "opener_for"]


class SmtpOpener(Opener):
    """RFC 3207: the ``220`` greeting, ``EHLO`` (its reply lists ``STARTTLS``), ``STARTTLS``
    answered by ``220``. Our EHLO names us by our address literal (RFC 5321 4.1.4)."""

    speaks = True

    async def prepare(self, wire: Wire, server_name: str) -> None:
        code, _ = await read_reply(wire)
        if code != 220:
            raise ExchangeFailed(f"SMTP greeting {code}, not 220")
        await wire.send(f"EHLO {wire.local_literal}\r\n".encode())
        code, lines = await read_reply(wire)
        if code != 250:
            raise StartTlsRefused(f"EHLO answered {code}")
        if not any(line.split(" ", 1)[0].upper() == "STARTTLS" for line in lines[1:]):
            raise StartTlsRefused("STARTTLS is not among the SMTP extensions")
        await wire.send(b"STARTTLS\r\n")
        code, _ = await read_reply(wire)
        if code != 220:
            raise StartTlsRefused(f"STARTTLS answered {code}")


class ImapOpener(Opener):
    """RFC 9051 / 3501: the ``* OK`` greeting, then ``STARTTLS`` tagged ``OK``. A server
    without it answers ``BAD`` or ``NO`` (asking CAPABILITY first would cost a round trip and
    tell nothing more); ``* PREAUTH`` allows no STARTTLS."""

    speaks = True
    TAG = "a1"

    async def prepare(self, wire: Wire, server_name: str) -> None:
        greeting = (await wire.line()).upper()
        if greeting.startswith("* PREAUTH"):
            raise StartTlsRefused("the IMAP server pre-authenticated the connection")
        if not greeting.startswith("* OK"):
            raise ExchangeFailed(f"IMAP greeting {greeting[:80]!r}")
        await wire.send(f"{self.TAG} STARTTLS\r\n".encode())
        while not (answer := await wire.line()).startswith(f"{self.TAG} "):
            if not answer.startswith("* "):  # untagged data may come first
                raise ExchangeFailed(f"unexpected IMAP answer {answer[:80]!r}")
        if answer[len(self.TAG) + 1 :].upper().split(" ", 1)[0] != "OK":
            raise StartTlsRefused(f"STARTTLS answered {answer[:80]!r}")


class Pop3Opener(Opener):
    """RFC 2595: the ``+OK`` greeting, then ``STLS`` answered ``+OK`` (``-ERR`` without)."""

    speaks = True

    async def prepare(self, wire: Wire, server_name: str) -> None:
        greeting = await wire.line()
        if not greeting.startswith("+OK"):
            raise ExchangeFailed(f"POP3 greeting {greeting[:80]!r}")
        await wire.send(b"STLS\r\n")
        answer = await wire.line()
        if not answer.startswith("+OK"):
            raise StartTlsRefused(f"STLS answered {answer[:80]!r}")


class FtpOpener(Opener):
    """RFC 4217: the ``220`` greeting, then ``AUTH TLS`` answered ``234``."""

    speaks = True

    async def prepare(self, wire: Wire, server_name: str) -> None:
        code, _ = await read_reply(wire)
        if code != 220:
            raise ExchangeFailed(f"FTP greeting {code}, not 220")
        await wire.send(b"AUTH TLS\r\n")
        code, _ = await read_reply(wire)
        if code != 234:
            raise StartTlsRefused(f"AUTH TLS answered {code}")


_AT_ONCE = Opener()

# Protocol (``HostSource.protocol``) -> its opener.
OPENERS: dict[str, Opener] = {
    "tls": _AT_ONCE,
    "https": _AT_ONCE,
    "smtp": SmtpOpener(),
    "submission": SmtpOpener(),
    "smtps": _AT_ONCE,
    "imap": ImapOpener(),
    "imaps": _AT_ONCE,
    "pop3": Pop3Opener(),
    "pop3s": _AT_ONCE,
    "ftp": FtpOpener(),
    "ldap": LdapOpener(),
    "ldaps": _AT_ONCE,
    "xmpp": XmppOpener(),
    "postgres": PostgresOpener(),
}


def opener_for(protocol: str) -> Opener:
    """The opener of a stored protocol; an unknown one (never saved) is refused."""
    try:
        return OPENERS[protocol]
    except KeyError:
        raise ExchangeFailed(f"no opener for the protocol {protocol!r}") from None
