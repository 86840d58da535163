"""What every STARTTLS opener stands on: the connection before TLS, read with a bound, and the
do-nothing opener of TLS at once.

An opener speaks a protocol's plain-text start on a connected socket up to the point where
the TLS handshake begins (sslyze's ``opportunistic_tls_helpers`` in asyncio). It reads
through a :class:`Wire`, which never holds more than :data:`MAX_ANSWER_BYTES` of what the
server said: a server that talks forever or sends a huge line ends the exchange at once. The
caller bounds the whole exchange in time.
"""

from __future__ import annotations

import asyncio
import socket
from typing import ClassVar

MAX_ANSWER_BYTES = 64 * 1024  # all a server may say before TLS: greetings, capabilities


class ExchangeFailed(Exception):
    """The plain-text start went wrong: the server closed, said too much or something else."""


class StartTlsRefused(ExchangeFailed):
    """The server does not offer STARTTLS (or refused it)."""


class Wire:
    """A connected non-blocking socket, before TLS: bounded reads through a buffer."""

    def __init__(self, sock: socket.socket, limit: int = MAX_ANSWER_BYTES) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._left = limit
        self._limit = limit

    @property
    def local_literal(self) -> str:
        """Our end of the connection as an SMTP address literal (``[192.0.2.1]``,
        ``[IPv6:2001:db8::1]``)."""
        address = str(self._sock.getsockname()[0]).split("%", 1)[0]
        return f"[IPv6:{address}]" if ":" in address else f"[{address}]"

    async def send(self, data: bytes) -> None:
        await self._loop.sock_sendall(self._sock, data)

    async def _fill(self) -> None:
        if self._left <= 0:
            raise ExchangeFailed(f"the server said more than {self._limit} bytes before TLS")
        chunk = await self._loop.sock_recv(self._sock, min(self._left, 65536))
        if not chunk:
            raise ExchangeFailed("the server closed the connection before TLS")
        self._left -= len(chunk)
        self._buffer += chunk

    async def until(self, marker: bytes) -> bytes:
        """The bytes up to and including ``marker``."""
        start = 0
        while (end := self._buffer.find(marker, start)) < 0:
            start = max(0, len(self._buffer) - len(marker) + 1)
            await self._fill()
        return self._take(end + len(marker))

    async def line(self) -> str:
        """One line without its CRLF (or LF), decoded leniently."""
        raw = await self.until(b"\n")
        return raw.rstrip(b"\r\n").decode("utf-8", "replace")

    async def exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            await self._fill()
        return self._take(size)

    async def some(self) -> bytes:
        """Whatever arrived (at least one byte)."""
        if not self._buffer:
            await self._fill()
        return self._take(len(self._buffer))

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class Opener:
    """TLS at once: nothing to say before the handshake (``tls``, ``https``, ``smtps``...).

    A STARTTLS protocol subclasses it: :meth:`prepare` speaks the protocol up to the point
    where the server expects a ClientHello, raising :class:`StartTlsRefused` when the server
    does not offer STARTTLS and :class:`ExchangeFailed` for anything else that goes wrong.
    """

    speaks: ClassVar[bool] = False  # False: the probe does not even build a Wire

    async def prepare(self, wire: Wire, server_name: str) -> None:
        """``server_name``: the host name (or address) the client asks for (SNI, XMPP's
        ``to``)."""
        del wire, server_name


def reply_code(line: str) -> tuple[int, bool]:
    """An SMTP or FTP reply line's code, and whether the reply goes on (``250-``)."""
    if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
        raise ExchangeFailed(f"not a reply line: {line[:80]!r}")
    return int(line[:3]), len(line) > 3 and line[3] == "-"


async def read_reply(wire: Wire) -> tuple[int, list[str]]:
    """An SMTP (RFC 5321) or FTP (RFC 959) reply: its code and the text of its lines.

    A multi-line reply starts with ``ddd-`` and ends with a line ``ddd `` of the same code
    (FTP's lines in between need not start with the code)."""
    first = await wire.line()
    code, more = reply_code(first)
    lines = [first[4:]]
    while more:
        line = await wire.line()
        ended = line[:3] == first[:3] and (len(line) == 3 or line[3] == " ")
        lines.append(line[4:] if line[:3] == first[:3] else line)
        more = not ended
    return code, lines
