"""The private-address guard: probes never connect to non-public addresses on a user's behalf.

Applied to every address actually connected to, after DNS resolution, so neither a DNS answer
pointing at 127.0.0.1 nor an alternate notation of an address gets through.
"""

from __future__ import annotations

import ipaddress

from tracking.core.errors import ErrorCode, ProbeError


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


def ensure_public_address(address: str, *, allow_private: bool) -> None:
    """Refuse a non-public address (PRIVATE_ADDRESS_REFUSED) unless private targets are allowed."""
    if not allow_private and not is_public_address(address):
        raise ProbeError(ErrorCode.PRIVATE_ADDRESS_REFUSED)
