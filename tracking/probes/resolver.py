"""Address resolution for probes: a host name -> its IPv4 and IPv6 addresses.

With ``DSTRACK_DNS_NAMESERVERS`` set, names are resolved with c-ares against exactly those
servers (A and AAAA, CNAME chains in the answer followed); otherwise with the system resolver
(``getaddrinfo``), so ``/etc/hosts`` applies. IP literals are returned without any query.

A host that cannot be resolved is "SSL Certificate not found" for users, so every failure is a
:class:`ResolutionError` with code ``CERTIFICATE_NOT_FOUND``; its ``kind`` tells a name that
does not exist (an answer) from a server that failed (worth retrying).

This module does **not** apply the private-address guard: probes connect through
:func:`tracking.probes.guard.connect_guarded`, which resolves with a :class:`Resolver` and
judges every address it connects to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Literal, Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver
import pycares

from tracking.core.errors import ErrorCode, ProbeError
from tracking.core.settings import Nameserver, Settings
from tracking.probes.ares import QueryFailed, channel_for

ResolutionKind = Literal["nxdomain", "no_address", "servfail", "timeout", "refused", "error"]

# Answers: the name does not exist or has no address. The others are failures to get an answer.
DEFINITIVE_KINDS: frozenset[ResolutionKind] = frozenset({"nxdomain", "no_address"})


class ResolutionError(ProbeError):
    """A host could not be resolved; ``kind`` says why."""

    def __init__(self, kind: ResolutionKind, host: str, detail: str | None = None) -> None:
        super().__init__(ErrorCode.CERTIFICATE_NOT_FOUND)
        self.kind: ResolutionKind = kind
        self.host = host
        self.detail = detail

    @property
    def definitive(self) -> bool:
        """True when DNS answered (no such name / no address), False when it failed."""
        return self.kind in DEFINITIVE_KINDS

    def __repr__(self) -> str:
        return f"ResolutionError(kind={self.kind!r}, host={self.host!r}, detail={self.detail!r})"


class Resolver(Protocol):
    async def resolve_addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses as text, each family in numeric order, no duplicates."""
        ...

    def address_groups(self, host: str) -> AsyncGenerator[list[str], None]:
        """The same addresses in groups, IPv4 first, for a caller that stops at the first
        address that works: a later group may be looked up only when it is asked for. Each
        group is one look-up, so a caller bounds each in time; a look-up that found nothing
        yields an empty group. Raises :class:`ResolutionError` when no group has an address."""
        ...


def make_dns_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    """A dnspython resolver for the DNS records probe, on the configured nameservers (else
    the system's), no cache.

    Each query may take ``probe_timeout_s`` in total (``lifetime``).
    """
    if settings.dns_nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(ns.host, ns.port) for ns in settings.dns_nameservers
        ]
    else:
        resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf
    resolver.timeout = settings.probe_timeout_s
    resolver.lifetime = settings.probe_timeout_s
    return resolver


def failure_kind(exc: BaseException) -> ResolutionKind:
    """Classify a dnspython resolution exception (shared with the DNS records probe)."""
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return "nxdomain"
    if isinstance(exc, dns.resolver.NoAnswer):
        return "no_address"
    if isinstance(exc, dns.exception.Timeout):
        return "timeout"
    if isinstance(exc, dns.resolver.NoNameservers):
        # Every server gave up; ``errors`` holds (server, tcp, port, error-or-rcode-text, response).
        rcodes = {err[4].rcode() for err in exc.kwargs.get("errors", []) if err[4] is not None}
        if dns.rcode.SERVFAIL in rcodes:
            return "servfail"
        if dns.rcode.REFUSED in rcodes:
            return "refused"
    return "error"


def ip_literal(host: str) -> str | None:
    """The canonical text of an IP address literal (``[v6]`` accepted), else None."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" not in text and not text.replace(".", "").isdigit():
        return None  # a host name: no need for ipaddress's (costly) refusal
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _ordered(addresses: list[str]) -> list[str]:
    unique = {ipaddress.ip_address(a): a for a in addresses}
    return [unique[ip] for ip in sorted(unique, key=lambda ip: (ip.version, int(ip)))]


def _most_telling(kinds: list[ResolutionKind]) -> ResolutionKind:
    """NXDOMAIN is an answer for both families; else a failure beats "no address" (the family
    that failed may have had addresses)."""
    if "nxdomain" in kinds:
        return "nxdomain"
    return next((k for k in kinds if k not in DEFINITIVE_KINDS), "no_address")


class DnsResolver:
    """Resolves with c-ares against the configured nameservers (see ``tracking.probes.ares``
    for why c-ares, and for how long its answers are kept)."""

    def __init__(self, nameservers: Sequence[Nameserver], timeout_s: float) -> None:
        if not nameservers:
            raise ValueError("DnsResolver needs at least one nameserver")
        self.servers = tuple(_server_text(ns) for ns in nameservers)
        self._timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> DnsResolver:
        return cls(settings.dns_nameservers, settings.probe_timeout_s)

    async def resolve_addresses(self, host: str) -> list[str]:
        literal = ip_literal(host)
        if literal is not None:
            return [literal]
        outcomes = await self._ask(host, (pycares.QUERY_TYPE_A, pycares.QUERY_TYPE_AAAA))
        addresses = [a for outcome in outcomes if isinstance(outcome, list) for a in outcome]
        if addresses:  # one family failing does not hide the other's addresses
            return _ordered(addresses)
        raise _failure(host, outcomes)

    async def address_groups(self, host: str) -> AsyncGenerator[list[str], None]:
        """AAAA is asked only when the caller wants more than the IPv4 addresses: most hosts
        answer on the first, so this halves the queries (and a server that drops AAAA queries
        costs nothing until IPv6 is needed)."""
        literal = ip_literal(host)
        if literal is not None:
            yield [literal]
            return
        (ipv4,) = await self._ask(host, (pycares.QUERY_TYPE_A,))
        # Even after an NXDOMAIN for A, AAAA is asked: some servers answer so for a name that
        # has only IPv6 addresses, and resolve_addresses would find those.
        ipv4_addresses = ipv4 if isinstance(ipv4, list) else []
        # Empty when A found nothing: the AAAA look-up is then a step of its own too.
        yield _ordered(ipv4_addresses) if ipv4_addresses else []
        (ipv6,) = await self._ask(host, (pycares.QUERY_TYPE_AAAA,))
        if isinstance(ipv6, list) and ipv6:
            yield _ordered(ipv6)
        elif not ipv4_addresses:  # one family failing does not hide the other's addresses
            raise _failure(host, [ipv4, ipv6])

    async def _ask(self, host: str, families: tuple[int, ...]) -> list[list[str] | ResolutionError]:
        """Each family's addresses, or why it has none; the families are asked at once."""
        with channel_for(self.servers, self._timeout_s) as channel:
            try:
                answers = [channel.query(host, family) for family in families]
            except (pycares.AresError, UnicodeError) as exc:  # a name c-ares cannot encode
                raise ResolutionError("nxdomain", host, str(exc)) from exc
            # Each family is given the whole time (plain futures: a task per query would cost
            # more than c-ares's work).
            try:
                await asyncio.wait(answers, timeout=self._timeout_s)
            finally:
                for answer in answers:
                    answer.cancel()  # no-op when done; else the late answer is ignored
        return [_outcome(answer, host, f) for answer, f in zip(answers, families, strict=True)]


def _failure(host: str, outcomes: Sequence[list[str] | ResolutionError]) -> ResolutionError:
    """Why a host has no address, from each family's outcome (none has addresses)."""
    errors = [outcome for outcome in outcomes if isinstance(outcome, ResolutionError)]
    if not errors:  # every family answered with CNAMEs only (the target is not in the answer)
        return ResolutionError("no_address", host)
    kind = _most_telling([e.kind for e in errors])
    return next(e for e in errors if e.kind == kind)


def _outcome(answer: asyncio.Future[Any], host: str, family: int) -> list[str] | ResolutionError:
    """One family's addresses (CNAME chains in the answer followed), or why there are none."""
    if answer.cancelled():
        return ResolutionError("timeout", host)
    failure = answer.exception()
    if isinstance(failure, QueryFailed):
        return ResolutionError(_ARES_KINDS.get(failure.errno, "error"), host, str(failure))
    if failure is not None:
        raise failure
    return [
        record.data.addr
        for record in answer.result().answer
        if record.type == family and hasattr(record.data, "addr")
    ]


# c-ares status -> kind. NOTFOUND is NXDOMAIN, NODATA an empty answer; a name c-ares cannot
# even encode does not exist either.
_ARES_KINDS: dict[int, ResolutionKind] = {
    pycares.errno.ARES_ENOTFOUND: "nxdomain",
    pycares.errno.ARES_EBADNAME: "nxdomain",
    pycares.errno.ARES_ENODATA: "no_address",
    pycares.errno.ARES_ESERVFAIL: "servfail",
    pycares.errno.ARES_EREFUSED: "refused",
    pycares.errno.ARES_ETIMEOUT: "timeout",
}


def _server_text(nameserver: Nameserver) -> str:
    """c-ares's ``ip:port`` form (``[v6]:port``)."""
    if ":" in nameserver.host:
        return f"[{nameserver.host}]:{nameserver.port}"
    return f"{nameserver.host}:{nameserver.port}"


class SystemResolver:
    """Resolves with the operating system (``getaddrinfo``: /etc/hosts, nsswitch, resolv.conf)."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s

    async def resolve_addresses(self, host: str) -> list[str]:
        literal = ip_literal(host)
        if literal is not None:
            return [literal]
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_s):
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise ResolutionError("timeout", host) from exc
        except socket.gaierror as exc:
            raise ResolutionError(_gai_kind(exc), host, str(exc)) from exc
        except UnicodeError as exc:  # a label the IDNA codec rejects
            raise ResolutionError("nxdomain", host, str(exc)) from exc
        addresses = [
            str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)
        ]
        if not addresses:
            raise ResolutionError("no_address", host)
        return _ordered(addresses)

    async def address_groups(self, host: str) -> AsyncGenerator[list[str], None]:
        """One group: ``getaddrinfo`` asks for both families at once (and only it knows whether
        a name without IPv4 addresses exists)."""
        yield await self.resolve_addresses(host)


def _gai_kind(exc: socket.gaierror) -> ResolutionKind:
    if exc.errno == socket.EAI_NONAME:
        return "nxdomain"
    if exc.errno == getattr(socket, "EAI_NODATA", None):
        return "no_address"
    if exc.errno == socket.EAI_AGAIN:
        # glibc's "temporary failure": SERVFAIL or no server answered in time.
        return "servfail"
    return "error"


def resolver_for(settings: Settings) -> Resolver:
    """The resolver probes use: the configured nameservers if any, else the system's."""
    if settings.dns_nameservers:
        return DnsResolver.from_settings(settings)
    return SystemResolver(settings.probe_timeout_s)
