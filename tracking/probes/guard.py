"""The private-address guard, and the one way probes connect out: :func:`connect_guarded`.

Every outbound connection (TLS, WHOIS, RDAP and any other HTTP fetch) resolves its host with the
probes' resolver, judges each address it would connect to and connects to that address itself,
so neither a DNS answer pointing at 127.0.0.1 (DNS rebinding) nor an alternate notation of an
address gets through, and a later DNS answer cannot swap in another address between the check
and the connection. Resolution, the guard, the timeouts and the failure report exist only here.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from tracking.core.errors import ErrorCode, ProbeError
from tracking.core.settings import Settings
from tracking.probes.resolver import ResolutionError, Resolver, ip_literal

T = TypeVar("T")


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 judged by its IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in (ip.ipv4_mapped, ip.sixtofour, _nat64(ip)):
            if embedded is not None:
                ip = embedded
                break
        else:
            if ip.teredo is not None:
                return False
    if isinstance(ip, ipaddress.IPv6Address) and (
        ip.is_site_local or any(ip in network for network in _NOT_GLOBAL_V6)
    ):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_unspecified or ip.is_reserved)


def _nat64(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
# Not global, though Python 3.11's tables say so: deprecated site-local addresses (fec0::/10,
# still routed inside some networks; checked above) and the RFC 9637 documentation prefix.
_NOT_GLOBAL_V6 = (ipaddress.IPv6Network("3fff::/20"),)


# --- connecting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardPolicy:
    """What the guard lets through, and how long each step (a look-up, a connect) may take."""

    allow_private: bool
    timeout_s: float

    @classmethod
    def of(cls, settings: Settings) -> GuardPolicy:
        """User-derived targets: private addresses only with ``allow_private_targets``."""
        return cls(settings.allow_private_targets, settings.probe_timeout_s)

    def trusting(self) -> GuardPolicy:
        """For a server the operator configured (a WHOIS server, the RDAP bootstrap): any
        address, same timeouts."""
        return self if self.allow_private else replace(self, allow_private=True)


@dataclass(frozen=True)
class Attempt:
    """One address not connected to (``port`` None when only judged), and why."""

    address: str
    port: int | None
    failure: str

    def __str__(self) -> str:
        where = self.address if self.port is None else join_address(self.address, self.port)
        return f"{where}: {self.failure}"


REFUSED = "private address refused"


@dataclass(frozen=True)
class Connected(Generic[T]):
    """What the connector gave for ``address``, the first address that accepted."""

    connection: T
    address: str


class ConnectFailed(ProbeError):
    """No address of the host could be connected to.

    ``refused`` when the guard refused one of them: that explains the failure better than the
    unreachable ones beside it (code ``PRIVATE_ADDRESS_REFUSED``); otherwise the host cannot be
    reached (``CERTIFICATE_NOT_FOUND``, the contract's "does not exist or cannot be reached").
    The last connection error, if any, is the ``__cause__``.
    """

    def __init__(self, host: str, port: int | None, attempts: tuple[Attempt, ...]) -> None:
        self.refused = any(a.failure == REFUSED for a in attempts)
        code = (
            ErrorCode.PRIVATE_ADDRESS_REFUSED if self.refused else ErrorCode.CERTIFICATE_NOT_FOUND
        )
        super().__init__(code)
        self.host = host
        self.port = port
        self.attempts = attempts
        self.detail = "; ".join(str(a) for a in attempts) or f"{host}: no address"


Connector = Callable[[str, int], Awaitable[T]]
"""Opens a connection to an IP address and port; raises OSError (TimeoutError too) on failure."""


async def connect_guarded(
    host: str, port: int, *, resolver: Resolver, policy: GuardPolicy, connect: Connector[T]
) -> Connected[T]:
    """Connect to the first address of ``host`` that the guard accepts and that answers.

    Addresses come in the resolver's groups (IPv4 first; IPv6 looked up only when no IPv4
    address connected), each look-up and each connect bounded by ``policy.timeout_s``. Raises
    :class:`ResolutionError` when the host has no address (kind ``timeout`` when a look-up took
    too long), :class:`ConnectFailed` when no address could be connected to.
    """
    literal = ip_literal(host)  # also accepts "[v6]"
    groups = _just(literal) if literal else resolver.address_groups(host)
    attempts: list[Attempt] = []
    error: OSError | None = None
    try:
        while (addresses := await _next_group(groups, host, policy.timeout_s)) is not None:
            for address in addresses:
                if not policy.allow_private and not is_public_address(address):
                    attempts.append(Attempt(address, port, REFUSED))
                    continue
                try:
                    async with asyncio.timeout(policy.timeout_s):
                        connection = await connect(address, port)
                except OSError as exc:  # refused, unreachable, timed out (TimeoutError too)
                    error = exc
                    attempts.append(Attempt(address, port, describe(exc)))
                    continue
                return Connected(connection, address)
    finally:
        await groups.aclose()
    raise ConnectFailed(host, port, tuple(attempts)) from error


async def judged_addresses(host: str, *, resolver: Resolver, policy: GuardPolicy) -> list[str]:
    """Every address of ``host`` the guard lets through, IPv4 then IPv6, without connecting.

    For checking a target before it is saved (a clear error at once), and for a library that
    opens its connections itself in a thread of its own (Apprise's urllib3), which then
    connects only to these addresses. Raises like :func:`connect_guarded`: ResolutionError,
    or ConnectFailed (``refused``) when the guard refused every address.
    """
    literal = ip_literal(host)
    groups = _just(literal) if literal else resolver.address_groups(host)
    allowed: list[str] = []
    refused: list[Attempt] = []
    try:
        while (addresses := await _next_group(groups, host, policy.timeout_s)) is not None:
            for address in addresses:
                if policy.allow_private or is_public_address(address):
                    allowed.append(address)
                else:
                    refused.append(Attempt(address, None, REFUSED))
    finally:
        await groups.aclose()
    if not allowed:
        raise ConnectFailed(host, None, tuple(refused))
    return allowed


async def _next_group(
    groups: AsyncGenerator[list[str], None], host: str, timeout_s: float
) -> list[str] | None:
    """The next group of addresses (each look-up bounded in time), None after the last."""
    try:
        async with asyncio.timeout(timeout_s):
            return await anext(groups)
    except StopAsyncIteration:
        return None
    except TimeoutError as exc:
        raise ResolutionError("timeout", host, "resolution timed out") from exc


async def _just(address: str) -> AsyncGenerator[list[str], None]:
    yield [address]


def join_address(address: str, port: int) -> str:
    """``1.2.3.4:443``, ``[2001:db8::1]:443``."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def describe(exc: BaseException) -> str:
    """An exception as a short technical reason, for details and logs."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    return str(exc) or type(exc).__name__
