"""The TLS probe: resolve a host, connect with SNI, and take the certificate chain it sends.

Nothing is verified here. Expired, self-signed, untrusted and wrong-name certificates are
retrieved as they are; the trust and host-name verdicts are computed from the chain elsewhere.
Two steps: a TCP connection through :func:`tracking.probes.guard.connect_guarded` (resolution,
the private-address guard, one address after another), then the TLS handshake on that socket.
"""

from __future__ import annotations

import _ssl
import asyncio
import contextlib
import socket
import ssl
import sys
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tracking.core import clock
from tracking.core.errors import ErrorCode, ProbeError
from tracking.core.settings import Settings
from tracking.probes.guard import (
    ConnectFailed,
    GuardPolicy,
    connect_guarded,
    describe,
    join_address,
)
from tracking.probes.resolver import ResolutionError, Resolver, ip_literal

# OpenSSL 3 refuses servers without RFC 5746 secure renegotiation unless told otherwise;
# Python names the option only from 3.12.
_OP_LEGACY_SERVER_CONNECT = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)


@dataclass(frozen=True)
class TlsHandshake:
    """What one TLS handshake with ``host:port`` gave."""

    host: str
    port: int
    address: str  # the IP actually connected to
    server_name: str | None  # SNI sent (None for IP literals)
    chain_der: tuple[bytes, ...]  # as the server sent it, leaf first
    protocol: str | None  # e.g. "TLSv1.3"
    cipher: str | None  # OpenSSL cipher name
    retrieved_at: datetime


class TlsProbe(Protocol):
    async def fetch_chain(self, host: str, port: int) -> TlsHandshake: ...


class TlsProbeError(ProbeError):
    """A :class:`ProbeError` with the technical cause, for logs and notes (not for users)."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(code)
        self.detail = detail


class RealTlsProbe:
    """Fetches certificate chains over the network, each step bounded by ``probe_timeout_s``."""

    def __init__(self, settings: Settings, resolver: Resolver) -> None:
        self._resolver = resolver
        self._timeout = settings.probe_timeout_s
        self._policy = GuardPolicy.of(settings)
        self._context = permissive_client_context()

    async def fetch_chain(self, host: str, port: int) -> TlsHandshake:
        literal = ip_literal(host)  # also accepts "[v6]"
        server_name = None if literal else host.rstrip(".")
        try:
            connected = await connect_guarded(
                literal or host,
                port,
                resolver=self._resolver,
                policy=self._policy,
                connect=self._connect,
            )
        except ConnectFailed as exc:
            raise TlsProbeError(exc.code, exc.detail) from (exc.__cause__ or exc)
        except ResolutionError as exc:  # no address, or a look-up that took too long
            detail = f"cannot resolve {host} ({exc.kind})"
            raise TlsProbeError(ErrorCode.CERTIFICATE_NOT_FOUND, detail) from exc
        return await self._handshake(
            connected.connection, host, port, connected.address, server_name
        )

    async def _connect(self, address: str, port: int) -> socket.socket:
        """A connected non-blocking TCP socket, or an OSError (the guard bounds it in time)."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (address, port))
        except BaseException:
            sock.close()
            raise
        return sock

    async def _handshake(
        self, sock: socket.socket, host: str, port: int, address: str, server_name: str | None
    ) -> TlsHandshake:
        """Run the TLS handshake on a connected socket, take the chain, and hang up."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                transport, protocol = await loop.create_connection(
                    _HangUp,
                    sock=sock,
                    ssl=self._context,
                    # An IP literal as server_hostname sends no SNI; asyncio needs some value here.
                    server_hostname=server_name or address.split("%", 1)[0],
                    ssl_handshake_timeout=self._timeout,
                )
        except (OSError, ValueError) as exc:  # TLS alert, garbage, reset, EOF, timeout; bad SNI
            sock.close()  # already closed by asyncio in most cases; closing twice is harmless
            detail = f"{join_address(address, port)}: TLS handshake failed: {describe(exc)}"
            raise TlsProbeError(ErrorCode.SSL_DETAILS_UNAVAILABLE, detail) from exc

        try:
            ssl_object = transport.get_extra_info("ssl_object")
            chain = unverified_chain(ssl_object) if ssl_object is not None else ()
            cipher = ssl_object.cipher() if ssl_object is not None else None
            protocol_name = ssl_object.version() if ssl_object is not None else None
        finally:
            # A probe, not a session: no close_notify exchange, which could wait on the peer.
            transport.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await protocol.closed
        if not chain:
            detail = f"{join_address(address, port)}: no certificate presented"
            raise TlsProbeError(ErrorCode.SSL_DETAILS_UNAVAILABLE, detail)
        return TlsHandshake(
            host=host,
            port=port,
            address=address,
            server_name=server_name,
            chain_der=chain,
            protocol=protocol_name,
            cipher=cipher[0] if cipher else None,
            retrieved_at=clock.now(),
        )


def permissive_client_context() -> ssl.SSLContext:
    """A client context that verifies nothing and still talks to old servers (TLS 1.0+)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # also what OpenSSL 3 needs for TLS 1.0/1.1
    context.options |= _OP_LEGACY_SERVER_CONNECT
    with warnings.catch_warnings():  # Python deprecates TLS 1.0; we only read certificates
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    return context


def unverified_chain(ssl_object: ssl.SSLObject) -> tuple[bytes, ...]:
    """The certificates the peer sent, DER, leaf first, unverified."""
    if sys.version_info >= (3, 13):
        chain = ssl_object.get_unverified_chain()
    else:  # private before 3.13: _ssl._SSLSocket.get_unverified_chain() -> [_ssl.Certificate]
        sslobj = getattr(ssl_object, "_sslobj", None)
        certificates = sslobj.get_unverified_chain() if sslobj is not None else None
        chain = [c.public_bytes(_ssl.ENCODING_DER) for c in certificates or ()]
    if chain:
        return tuple(chain)
    leaf = ssl_object.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


class _HangUp(asyncio.Protocol):
    """Ignores whatever arrives after the handshake and reports when the connection is gone."""

    def __init__(self) -> None:
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
