"""Every address of a host at once: the TLS probe run against each A and AAAA address.

For "check all addresses": the host's addresses are resolved (IPv4 then IPv6, in the
resolver's order, at most ``MAX_ADDRESSES``), then the chain is fetched from each address
concurrently, each through the TLS probe and so through the private-address guard, with the
probe's timeouts. A failed address is an outcome, not an exception.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from tracking.core.endpoints import MAX_ADDRESSES
from tracking.core.errors import DstrackError, ErrorCode
from tracking.core.sources import HostSource
from tracking.probes.guard import join_address
from tracking.probes.resolver import ResolutionError, Resolver, ip_literal
from tracking.probes.tls import TlsHandshake, TlsProbe, TlsProbeError


@dataclass(frozen=True)
class AddressOutcome:
    """What one address gave: a handshake, or the error."""

    address: str
    port: int
    handshake: TlsHandshake | None = None
    error: DstrackError | None = None

    @property
    def reason(self) -> str | None:
        """The error as a short text: "Connection refused", "private address refused",
        "TLS handshake failed: ...", without the address it is listed with."""
        if self.error is None:
            return None
        cause = self.error.__cause__
        if isinstance(cause, ConnectionError) and cause.errno:
            return os.strerror(cause.errno)  # "Connection refused", not asyncio's wording
        detail: str = getattr(self.error, "detail", None) or self.error.message
        return detail.removeprefix(f"{join_address(self.address, self.port)}: ")


async def host_addresses(resolver: Resolver, host: str, timeout_s: float) -> list[str]:
    """The addresses to check: the literal itself, or the first ``MAX_ADDRESSES`` the host
    resolves to; a host with none is "not found", as for a single probe."""
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    try:
        async with asyncio.timeout(timeout_s):
            addresses = await resolver.resolve_addresses(host)
    except TimeoutError as exc:
        raise TlsProbeError(ErrorCode.CERTIFICATE_NOT_FOUND, f"cannot resolve {host}") from exc
    except ResolutionError as exc:
        detail = f"cannot resolve {host} ({exc.kind})"
        raise TlsProbeError(ErrorCode.CERTIFICATE_NOT_FOUND, detail) from exc
    if not addresses:
        raise TlsProbeError(ErrorCode.CERTIFICATE_NOT_FOUND, f"{host}: no address")
    return addresses[:MAX_ADDRESSES]


async def fetch_every_address(
    tls: TlsProbe, resolver: Resolver, source: HostSource, *, timeout_s: float
) -> list[AddressOutcome]:
    """The chain at each address of ``source``'s host, in the resolver's order."""
    addresses = await host_addresses(resolver, source.host, timeout_s)

    async def one(address: str) -> AddressOutcome:
        try:
            handshake = await tls.fetch_chain(source, address=address)
        except DstrackError as error:
            return AddressOutcome(address, source.port, error=error)
        return AddressOutcome(address, source.port, handshake=handshake)

    return list(await asyncio.gather(*(one(address) for address in addresses)))


def telling_error(outcomes: list[AddressOutcome]) -> DstrackError:
    """Why no address gave a certificate: a refused private address explains it best (as for
    a single probe), then the first address's error."""
    errors = [o.error for o in outcomes if o.error is not None]
    refused = [e for e in errors if e.code is ErrorCode.PRIVATE_ADDRESS_REFUSED]
    if refused:
        return refused[0]
    return errors[0] if errors else DstrackError(ErrorCode.SSL_DETAILS_UNAVAILABLE)
