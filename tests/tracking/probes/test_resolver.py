"""Address resolution: configured nameservers (c-ares) and the system resolver."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, Literal

import dns.nameserver
import pycares
import pytest

from tests.fakes.dns_server import DnsServer, ZoneData
from tracking.core.errors import MESSAGES, ErrorCode, ProbeError
from tracking.core.settings import Nameserver, Settings
from tracking.probes.ares import shared_channels
from tracking.probes.resolver import (
    DnsResolver,
    ResolutionError,
    SystemResolver,
    make_dns_resolver,
    resolver_for,
)

ZONES: ZoneData = {
    "v4.test.": {"A": ["192.0.2.20", "192.0.2.3", "192.0.2.10"]},
    "dual.test.": {"A": "192.0.2.1", "AAAA": ["2001:db8::20", "2001:db8::3"]},
    "v6.test.": {"AAAA": "2001:db8::1"},
    "alias.test.": {"CNAME": "hop.test."},
    "hop.test.": {"CNAME": "dual.test."},
    "mail-only.test.": {"MX": "10 mx.test."},
}


@pytest.fixture
def server(dns_server: DnsServer) -> DnsServer:
    dns_server.load(ZONES, origin="test.")
    return dns_server


def resolve(server: DnsServer, host: str, *, timeout_s: float = 2) -> Any:
    return resolver_for(server.settings(probe_timeout_s=timeout_s)).resolve_addresses(host)


async def resolution_error(
    server: DnsServer, host: str, *, timeout_s: float = 2
) -> ResolutionError:
    with pytest.raises(ResolutionError) as caught:
        await resolve(server, host, timeout_s=timeout_s)
    return caught.value


@pytest.mark.parametrize(
    ("host", "addresses"),
    [
        ("v4.test", ["192.0.2.3", "192.0.2.10", "192.0.2.20"]),  # numeric, not text, order
        ("dual.test", ["192.0.2.1", "2001:db8::3", "2001:db8::20"]),  # IPv4 first
        ("v6.test.", ["2001:db8::1"]),
        ("ALIAS.test", ["192.0.2.1", "2001:db8::3", "2001:db8::20"]),  # CNAME -> CNAME -> A
    ],
)
async def test_resolves_a_and_aaaa(server: DnsServer, host: str, addresses: list[str]) -> None:
    assert await resolve(server, host) == addresses


@pytest.mark.parametrize(
    ("host", "address"),
    [("192.0.2.7", "192.0.2.7"), ("2001:DB8::1", "2001:db8::1"), ("[::1]", "::1")],
)
@pytest.mark.parametrize("configured", [True, False])
async def test_ip_literals_need_no_query(
    server: DnsServer, host: str, address: str, configured: bool
) -> None:
    settings = server.settings() if configured else Settings()
    assert await resolver_for(settings).resolve_addresses(host) == [address]
    assert server.queries == []


async def test_nxdomain_is_certificate_not_found(server: DnsServer) -> None:
    error = await resolution_error(server, "lalala.test")
    assert isinstance(error, ProbeError)
    assert error.code == ErrorCode.CERTIFICATE_NOT_FOUND
    assert error.message == MESSAGES[ErrorCode.CERTIFICATE_NOT_FOUND]
    assert (error.kind, error.host, error.definitive) == ("nxdomain", "lalala.test", True)


async def test_name_without_address(server: DnsServer) -> None:
    error = await resolution_error(server, "mail-only.test")
    assert (error.kind, error.definitive) == ("no_address", True)
    assert error.code == ErrorCode.CERTIFICATE_NOT_FOUND


async def test_servfail(server: DnsServer) -> None:
    server.set_fault("dual.test.", "servfail")
    error = await resolution_error(server, "dual.test")
    assert (error.kind, error.definitive) == ("servfail", False)
    assert error.code == ErrorCode.CERTIFICATE_NOT_FOUND


async def test_refused_outside_the_served_zones(server: DnsServer) -> None:
    error = await resolution_error(server, "example.org")
    assert (error.kind, error.definitive) == ("refused", False)


async def test_timeout(server: DnsServer) -> None:
    server.set_fault("dual.test.", "timeout")
    started = time.monotonic()
    error = await resolution_error(server, "dual.test", timeout_s=0.5)
    assert (error.kind, error.definitive) == ("timeout", False)
    assert error.code == ErrorCode.CERTIFICATE_NOT_FOUND
    assert time.monotonic() - started < 2  # A and AAAA are asked at once


async def test_a_closed_channel_leaves_no_timer_behind(server: DnsServer) -> None:
    """A query that timed out was retried on a new socket; once the channel is closed, none
    of its timers may fire (they did, into a destroyed channel)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    server.set_fault("dual.test.", "timeout")
    await resolution_error(server, "dual.test", timeout_s=0.4)
    await asyncio.sleep(1.2)  # past every timer c-ares asked for
    assert errors == []


async def test_one_family_failing_keeps_the_other(server: DnsServer) -> None:
    server.set_fault("dual.test.", "servfail", rtype="AAAA")
    assert await resolve(server, "dual.test") == ["192.0.2.1"]


async def test_one_family_timing_out_keeps_the_other(server: DnsServer) -> None:
    server.set_fault("dual.test.", "timeout", rtype="AAAA")
    assert await resolve(server, "dual.test", timeout_s=0.5) == ["192.0.2.1"]


async def test_every_lookup_sees_the_current_answer(server: DnsServer) -> None:
    """c-ares caches answers for their TTL (300 s here) in a channel; a look-up outside a
    batch must still see a record changed a moment ago (a forced update after a DNS fix)."""
    resolver = resolver_for(server.settings())
    assert await resolver.resolve_addresses("v6.test") == ["2001:db8::1"]
    server.set_records("v6.test.", "AAAA", "2001:db8::99")
    assert await resolver.resolve_addresses("v6.test") == ["2001:db8::99"]


async def test_a_batch_shares_one_channel_and_closes_it(
    server: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[pycares.Channel] = []
    closed: list[pycares.Channel] = []

    class Counted(pycares.Channel):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            opened.append(self)

        def close(self) -> None:
            closed.append(self)
            super().close()

    monkeypatch.setattr(pycares, "Channel", Counted)
    resolver = resolver_for(server.settings())
    with shared_channels():
        found = await asyncio.gather(*(resolver.resolve_addresses(h) for h in ["v4.test"] * 5))
        assert found == [["192.0.2.3", "192.0.2.10", "192.0.2.20"]] * 5
        assert (len(opened), closed) == (1, [])
    assert closed == opened
    await resolver.resolve_addresses("v6.test")  # outside: a channel of its own, closed after
    assert len(opened) == 2
    assert closed == opened


# -- address groups: AAAA only when the caller wants more than the IPv4 addresses ----------------


async def groups_taken(
    server: DnsServer, host: str, *, take: int = 2, timeout_s: float = 2
) -> list[list[str]]:
    """The first ``take`` non-empty groups of a look-up, the caller then hanging up as the TLS
    probe does."""
    groups = resolver_for(server.settings(probe_timeout_s=timeout_s)).address_groups(host)
    taken = []
    try:
        async for group in groups:
            if group:
                taken.append(group)
            if len(taken) == take:
                break
    finally:
        await groups.aclose()
    return taken


async def test_each_group_is_one_look_up(server: DnsServer) -> None:
    """A caller bounds each group in time, so a name without IPv4 addresses yields an empty
    group for its A look-up, then its IPv6 addresses."""
    resolver = resolver_for(server.settings())
    assert [g async for g in resolver.address_groups("v6.test")] == [[], ["2001:db8::1"]]
    assert [g async for g in resolver.address_groups("v4.test")] == [
        ["192.0.2.3", "192.0.2.10", "192.0.2.20"]
    ]


def asked(server: DnsServer, name: str) -> list[str]:
    return [rtype for qname, rtype in server.queries if qname == name]


async def test_groups_ask_aaaa_only_when_the_caller_goes_on(server: DnsServer) -> None:
    assert await groups_taken(server, "dual.test", take=1) == [["192.0.2.1"]]
    assert asked(server, "dual.test.") == ["A"]

    server.clear_queries()
    assert await groups_taken(server, "dual.test") == [
        ["192.0.2.1"],
        ["2001:db8::3", "2001:db8::20"],
    ]
    assert asked(server, "dual.test.") == ["A", "AAAA"]


@pytest.mark.parametrize(
    ("host", "groups"),
    [
        ("v4.test", [["192.0.2.3", "192.0.2.10", "192.0.2.20"]]),
        ("v6.test", [["2001:db8::1"]]),
        ("ALIAS.test", [["192.0.2.1"], ["2001:db8::3", "2001:db8::20"]]),
        ("192.0.2.7", [["192.0.2.7"]]),
    ],
)
async def test_groups_hold_what_resolve_addresses_finds(
    server: DnsServer, host: str, groups: list[list[str]]
) -> None:
    assert await groups_taken(server, host) == groups
    assert [a for group in groups for a in group] == await resolve(server, host)


async def test_groups_of_a_name_that_does_not_exist(server: DnsServer) -> None:
    with pytest.raises(ResolutionError) as caught:
        await groups_taken(server, "lalala.test")
    assert caught.value.kind == "nxdomain"
    assert asked(server, "lalala.test.") == ["A", "AAAA"]


@pytest.mark.parametrize(
    ("fault", "rtype", "groups"),
    [
        ("nxdomain", "A", [["2001:db8::3", "2001:db8::20"]]),  # a broken server's NXDOMAIN
        ("servfail", "A", [["2001:db8::3", "2001:db8::20"]]),
        ("timeout", "A", [["2001:db8::3", "2001:db8::20"]]),
        ("servfail", "AAAA", [["192.0.2.1"]]),
        ("timeout", "AAAA", [["192.0.2.1"]]),
    ],
)
async def test_groups_one_family_failing_keeps_the_other(
    server: DnsServer,
    fault: Literal["nxdomain", "servfail", "timeout"],
    rtype: str,
    groups: list[list[str]],
) -> None:
    server.set_fault("dual.test.", fault, rtype=rtype)
    assert await groups_taken(server, "dual.test", timeout_s=0.5) == groups


@pytest.mark.parametrize(
    ("host", "fault", "kind"),
    [
        ("dual.test", "servfail", "servfail"),
        ("mail-only.test", None, "no_address"),
        ("example.org", None, "refused"),
    ],
)
async def test_groups_without_any_address_raise_why(
    server: DnsServer, host: str, fault: Literal["servfail"] | None, kind: str
) -> None:
    if fault:
        server.set_fault(f"{host}.", fault)
    with pytest.raises(ResolutionError) as caught:
        await groups_taken(server, host)
    assert (caught.value.kind, caught.value.code) == (kind, ErrorCode.CERTIFICATE_NOT_FOUND)


async def test_system_resolver_gives_one_group() -> None:
    resolver = SystemResolver(timeout_s=5)
    groups = [group async for group in resolver.address_groups("localhost")]
    assert groups == [await resolver.resolve_addresses("localhost")]


def test_nameservers_are_given_to_c_ares_with_their_ports() -> None:
    resolver = DnsResolver((Nameserver("127.0.0.1", 5353), Nameserver("::1")), timeout_s=3)
    assert resolver.servers == ("127.0.0.1:5353", "[::1]:53")


async def test_a_failure_beats_no_address(server: DnsServer) -> None:
    server.set_fault("v4.test.", "servfail", rtype="A")  # AAAA answers "none"
    assert (await resolution_error(server, "v4.test")).kind == "servfail"


async def test_nameservers_from_the_environment(server: DnsServer) -> None:
    settings = Settings.from_env({"DSTRACK_DNS_NAMESERVERS": server.nameservers_env})
    assert isinstance(resolver_for(settings), DnsResolver)
    assert await resolver_for(settings).resolve_addresses("v6.test") == ["2001:db8::1"]


def test_make_dns_resolver_uses_each_nameserver_with_its_port() -> None:
    settings = Settings(
        dns_nameservers=(Nameserver("127.0.0.1", 5353), Nameserver("::1")), probe_timeout_s=3
    )
    resolver = make_dns_resolver(settings)
    servers = [n for n in resolver.nameservers if isinstance(n, dns.nameserver.Do53Nameserver)]
    assert len(servers) == len(resolver.nameservers)
    assert [(ns.answer_nameserver(), ns.answer_port()) for ns in servers] == [
        ("127.0.0.1", 5353),
        ("::1", 53),
    ]
    assert resolver.lifetime == resolver.timeout == 3
    assert resolver.cache is None


def test_without_nameservers_the_system_resolver_is_used() -> None:
    assert isinstance(resolver_for(Settings()), SystemResolver)


async def test_system_resolver_resolves_localhost() -> None:
    addresses = await SystemResolver(timeout_s=5).resolve_addresses("localhost")
    assert addresses
    assert set(addresses) <= {"127.0.0.1", "::1"}
    assert addresses == sorted(addresses, key=lambda a: ":" in a)  # IPv4 first


@pytest.mark.parametrize(
    ("errno", "kind"),
    [
        (socket.EAI_NONAME, "nxdomain"),
        (socket.EAI_AGAIN, "servfail"),
        (socket.EAI_FAIL, "error"),
    ],
)
async def test_system_resolver_failures(
    monkeypatch: pytest.MonkeyPatch, errno: int, kind: str
) -> None:
    async def failing(*args: object, **kwargs: object) -> list[Any]:
        raise socket.gaierror(errno, "boom")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", failing)
    with pytest.raises(ResolutionError) as caught:
        await SystemResolver(timeout_s=1).resolve_addresses("example.test")
    assert caught.value.kind == kind
    assert caught.value.code == ErrorCode.CERTIFICATE_NOT_FOUND


async def test_system_resolver_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow(*args: object, **kwargs: object) -> list[Any]:
        await asyncio.sleep(10)
        return []

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", slow)
    with pytest.raises(ResolutionError) as caught:
        await SystemResolver(timeout_s=0.05).resolve_addresses("example.test")
    assert caught.value.kind == "timeout"
