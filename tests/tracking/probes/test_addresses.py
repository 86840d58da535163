"""Every address of a host: the guard for each, at most 16, concurrently, in the resolver's
order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import pytest

from tests.fakes.tls_server import FakeTlsServer
from tests.fakes.tls_server import tls_server as tls_server  # fixture
from tracking.core import clock
from tracking.core.endpoints import MAX_ADDRESSES
from tracking.core.errors import ErrorCode, ProbeError
from tracking.core.settings import Settings
from tracking.core.sources import HostSource
from tracking.probes.addresses import fetch_every_address, telling_error
from tracking.probes.resolver import ResolutionError
from tracking.probes.tls import RealTlsProbe, TlsHandshake

TIMEOUT = 1.0
GUARDED = Settings(allow_private_targets=False, probe_timeout_s=TIMEOUT)


class Answers:
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve_addresses(self, host: str) -> list[str]:
        if not self.addresses:
            raise ResolutionError("nxdomain", host)
        return list(self.addresses)

    async def address_groups(self, host: str) -> AsyncGenerator[list[str], None]:
        yield await self.resolve_addresses(host)


class SlowProbe:
    """Takes 0.2 s per address and records which it was asked for."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    async def fetch_chain(self, source: HostSource, *, address: str | None = None) -> TlsHandshake:
        self.asked.append(address)
        await asyncio.sleep(0.2)
        return TlsHandshake(
            source.host, source.port, address or "?", source.host, (b"x",), "TLSv1.3", "C",
            clock.now(),
        )  # fmt: skip


async def test_the_guard_judges_every_address(tls_server: FakeTlsServer) -> None:
    resolver = Answers(["127.0.0.1", "10.0.0.1"])
    probe = RealTlsProbe(GUARDED, resolver)
    source = HostSource("public.example.com", tls_server.port)
    outcomes = await fetch_every_address(probe, resolver, source, timeout_s=TIMEOUT)
    assert [(o.address, o.reason) for o in outcomes] == [
        ("127.0.0.1", "private address refused"),
        ("10.0.0.1", "private address refused"),
    ]
    assert telling_error(outcomes).code is ErrorCode.PRIVATE_ADDRESS_REFUSED
    assert tls_server.connections == []


async def test_at_most_16_addresses_at_once_in_order() -> None:
    addresses = [f"192.0.2.{i}" for i in range(1, 21)]
    probe = SlowProbe()
    started = time.monotonic()
    outcomes = await fetch_every_address(
        probe, Answers(addresses), HostSource("many.example"), timeout_s=TIMEOUT
    )
    assert MAX_ADDRESSES == 16
    assert [o.address for o in outcomes] == addresses[:16]
    assert sorted(probe.asked) == sorted(addresses[:16])  # type: ignore[type-var]
    assert time.monotonic() - started < 1.0  # concurrently, not 16 x 0.2 s


async def test_an_ip_literal_is_its_one_address() -> None:
    probe = SlowProbe()
    resolver = Answers([])
    outcomes = await fetch_every_address(
        probe, resolver, HostSource("2001:db8::1"), timeout_s=TIMEOUT
    )
    assert [o.address for o in outcomes] == ["2001:db8::1"]


async def test_a_host_without_addresses_is_not_found() -> None:
    with pytest.raises(ProbeError) as caught:
        await fetch_every_address(
            SlowProbe(), Answers([]), HostSource("none.example"), timeout_s=TIMEOUT
        )
    assert caught.value.code is ErrorCode.CERTIFICATE_NOT_FOUND
