"""connect_guarded: the one way probes connect out (resolution, the guard, timeouts, failures)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence

import pytest

from tests.fakes.rdap_server import FIXTURES, FakeRdapServer
from tests.fakes.tls_server import FakeTlsServer
from tests.fakes.tls_server import tls_server as tls_server  # fixture
from tests.fakes.whois_server import FakeWhoisServer
from tracking.core.errors import ErrorCode
from tracking.core.registration import LookupFailureKind, RegistryLookupError
from tracking.core.settings import Settings
from tracking.probes import guard, rdap, whois
from tracking.probes.guard import (
    Connected,
    ConnectFailed,
    GuardPolicy,
    connect_guarded,
    judged_addresses,
)
from tracking.probes.resolver import ResolutionError
from tracking.probes.tls import RealTlsProbe

TIMEOUT = 1.0
GUARDED = GuardPolicy(allow_private=False, timeout_s=TIMEOUT)
OPEN = GuardPolicy(allow_private=True, timeout_s=TIMEOUT)
PUBLIC_V4 = ["8.8.8.8", "1.1.1.1"]
PUBLIC_V6 = ["2606:4700:4700::1111"]


class GroupResolver:
    """IPv4 addresses, then IPv6 ones, each group handed out only when asked for."""

    def __init__(self, answers: Mapping[str, Sequence[str]]) -> None:
        self.answers = answers
        self.given: list[int] = []

    async def resolve_addresses(self, host: str) -> list[str]:
        raise AssertionError("connect_guarded asks for address groups")

    async def address_groups(self, host: str) -> AsyncGenerator[list[str], None]:
        if host not in self.answers:
            raise ResolutionError("nxdomain", host)
        addresses = self.answers[host]
        for family in (4, 6):
            self.given.append(family)
            yield [a for a in addresses if (":" in a) == (family == 6)]


class Connector:
    """Connects "successfully" to the addresses in ``accept``; refuses or hangs on others."""

    def __init__(self, accept: Sequence[str] = (), hang: Sequence[str] = ()) -> None:
        self.accept = set(accept)
        self.hang = set(hang)
        self.tried: list[tuple[str, int]] = []

    async def __call__(self, address: str, port: int) -> str:
        self.tried.append((address, port))
        if address in self.hang:
            await asyncio.sleep(60)
        if address not in self.accept:
            raise ConnectionRefusedError(f"[Errno 111] {address} refused")
        return f"connection to {address}"


async def test_the_first_address_that_answers_is_used() -> None:
    resolver = GroupResolver({"www.example": PUBLIC_V4 + PUBLIC_V6})
    connect = Connector(accept=["1.1.1.1"])

    connected = await connect_guarded(
        "www.example", 443, resolver=resolver, policy=GUARDED, connect=connect
    )

    assert connected == Connected("connection to 1.1.1.1", "1.1.1.1")
    assert connect.tried == [("8.8.8.8", 443), ("1.1.1.1", 443)]
    assert resolver.given == [4]  # IPv6 not even looked up


async def test_ipv6_is_looked_up_when_no_ipv4_address_answers() -> None:
    resolver = GroupResolver({"www.example": PUBLIC_V4 + PUBLIC_V6})
    connect = Connector(accept=PUBLIC_V6)

    connected = await connect_guarded(
        "www.example", 443, resolver=resolver, policy=GUARDED, connect=connect
    )

    assert connected.address == PUBLIC_V6[0]
    assert resolver.given == [4, 6]


async def test_private_addresses_are_never_handed_to_the_connector() -> None:
    resolver = GroupResolver({"rebind.example": ["8.8.8.8", "127.0.0.1", "::1", "fd00::1"]})
    connect = Connector()

    with pytest.raises(ConnectFailed) as caught:
        await connect_guarded(
            "rebind.example", 8443, resolver=resolver, policy=GUARDED, connect=connect
        )

    assert connect.tried == [("8.8.8.8", 8443)]
    failed = caught.value
    assert failed.refused and failed.code is ErrorCode.PRIVATE_ADDRESS_REFUSED
    assert failed.detail == (
        "8.8.8.8:8443: [Errno 111] 8.8.8.8 refused; 127.0.0.1:8443: private address refused; "
        "[::1]:8443: private address refused; [fd00::1]:8443: private address refused"
    )
    assert isinstance(failed.__cause__, ConnectionRefusedError)


@pytest.mark.parametrize(
    "literal", ["127.0.0.1", "[::1]", "::ffff:127.0.0.1", "[::ffff:7f00:1]", "169.254.169.254"]
)
async def test_private_literals_are_refused_without_a_look_up(literal: str) -> None:
    resolver = GroupResolver({})
    connect = Connector(accept=["127.0.0.1"])

    with pytest.raises(ConnectFailed) as caught:
        await connect_guarded(literal, 443, resolver=resolver, policy=GUARDED, connect=connect)

    assert caught.value.refused
    assert connect.tried == [] and resolver.given == []


async def test_a_trusting_policy_lets_private_addresses_through() -> None:
    resolver = GroupResolver({"whois.internal": ["10.0.0.7"]})
    connect = Connector(accept=["10.0.0.7"])

    connected = await connect_guarded(
        "whois.internal", 43, resolver=resolver, policy=GUARDED.trusting(), connect=connect
    )

    assert connected.address == "10.0.0.7"
    assert GUARDED.trusting() == OPEN and OPEN.trusting() is OPEN


async def test_unreachable_everywhere_is_not_found_with_every_address_listed() -> None:
    resolver = GroupResolver({"down.example": PUBLIC_V4 + PUBLIC_V6})
    connect = Connector()

    with pytest.raises(ConnectFailed) as caught:
        await connect_guarded("down.example", 443, resolver=resolver, policy=OPEN, connect=connect)

    failed = caught.value
    assert not failed.refused and failed.code is ErrorCode.CERTIFICATE_NOT_FOUND
    assert [(a.address, a.port) for a in failed.attempts] == [
        ("8.8.8.8", 443),
        ("1.1.1.1", 443),
        ("2606:4700:4700::1111", 443),
    ]
    assert failed.detail.startswith("8.8.8.8:443: ")
    assert "; [2606:4700:4700::1111]:443: " in failed.detail


async def test_each_connect_has_the_timeout_and_the_next_address_is_tried() -> None:
    resolver = GroupResolver({"slow.example": PUBLIC_V4})
    connect = Connector(accept=["1.1.1.1"], hang=["8.8.8.8"])
    policy = GuardPolicy(allow_private=False, timeout_s=0.3)

    started = time.monotonic()
    connected = await connect_guarded(
        "slow.example", 443, resolver=resolver, policy=policy, connect=connect
    )

    assert connected.address == "1.1.1.1"
    assert 0.25 <= time.monotonic() - started < 0.3 + 1.0


async def test_a_hanging_look_up_is_a_resolution_timeout() -> None:
    class Hanging(GroupResolver):
        async def address_groups(self, host: str) -> AsyncGenerator[list[str], None]:
            await asyncio.sleep(60)
            yield []

    policy = GuardPolicy(allow_private=False, timeout_s=0.2)
    with pytest.raises(ResolutionError) as caught:
        await connect_guarded(
            "slow.example", 443, resolver=Hanging({}), policy=policy, connect=Connector()
        )
    assert caught.value.kind == "timeout"


async def test_an_unknown_name_is_the_resolvers_error() -> None:
    with pytest.raises(ResolutionError) as caught:
        await connect_guarded(
            "nope.example", 443, resolver=GroupResolver({}), policy=OPEN, connect=Connector()
        )
    assert caught.value.kind == "nxdomain"


async def test_no_address_at_all() -> None:
    with pytest.raises(ConnectFailed) as caught:
        await connect_guarded(
            "empty.example",
            443,
            resolver=GroupResolver({"empty.example": []}),
            policy=OPEN,
            connect=Connector(),
        )
    assert caught.value.detail == "empty.example: no address"


async def test_judged_addresses_are_every_address_the_guard_accepts() -> None:
    resolver = GroupResolver({"mixed.example": ["8.8.8.8", "10.0.0.1", "::1", *PUBLIC_V6]})

    addresses = await judged_addresses("mixed.example", resolver=resolver, policy=GUARDED)

    assert addresses == ["8.8.8.8", *PUBLIC_V6]
    assert resolver.given == [4, 6]  # no connection to stop at: both families


async def test_judged_addresses_refuse_a_host_with_none_left() -> None:
    resolver = GroupResolver({"inside.example": ["10.0.0.1", "fd00::1"]})

    with pytest.raises(ConnectFailed) as caught:
        await judged_addresses("inside.example", resolver=resolver, policy=GUARDED)

    assert caught.value.refused
    assert (
        caught.value.detail == "10.0.0.1: private address refused; fd00::1: private address refused"
    )
    assert await judged_addresses("inside.example", resolver=resolver, policy=OPEN) == [
        "10.0.0.1",
        "fd00::1",
    ]


# --- every probe connects through it -------------------------------------------------------------


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every address the guard judges; 127.0.0.1 plays a public address here, so that the
    local servers answer while the guard is on."""
    seen: list[str] = []

    def recording(address: str) -> bool:
        seen.append(address)
        return address == "127.0.0.1"

    monkeypatch.setattr(guard, "is_public_address", recording)
    yield seen


GUARDED_SETTINGS = Settings(allow_private_targets=False, probe_timeout_s=TIMEOUT)


async def test_the_tls_probe_connects_through_the_guard(
    judged: list[str], tls_server: FakeTlsServer
) -> None:
    handshake = await RealTlsProbe(GUARDED_SETTINGS, GroupResolver({})).fetch_chain(
        "127.0.0.1", tls_server.port
    )
    assert handshake.address == "127.0.0.1"
    assert judged == ["127.0.0.1"]


async def test_whois_referrals_connect_through_the_guard(judged: list[str]) -> None:
    with (
        FakeWhoisServer(referrals={"io": "whois.nic.io"}) as iana,
        FakeWhoisServer({"google.io": FIXTURES / "whois" / "raw" / "google.io"}) as registry,
    ):
        book = {"whois.iana.org": iana.address, "whois.nic.io": registry.address}
        answer = await whois.query_whois("google.io", GUARDED_SETTINGS, address_book=book)
    assert answer.server == "whois.nic.io"
    assert judged == ["127.0.0.1", "127.0.0.1"]  # IANA, then the registry it named


async def test_rdap_connects_through_the_guard(judged: list[str]) -> None:
    """The bootstrap's host is trusted; a registrar link to another host is judged."""
    rdap.clear_bootstrap_cache()
    domains = FIXTURES / "rdap" / "domains"
    with FakeRdapServer(aliases={"rdap.markmonitor.com": "localhost"}) as server:
        server.add_domain("google.com", domains / "verisign__google.com.json")
        settings = Settings(
            rdap_bootstrap_url=server.bootstrap_url,
            allow_private_targets=False,
            probe_timeout_s=TIMEOUT,
        )
        async with rdap.RdapClient(settings, GroupResolver({"localhost": ["::1"]})) as client:
            answer = await client.query("google.com")
            assert isinstance(answer, rdap.RdapAnswer)
            assert judged == []  # 127.0.0.1: the operator's bootstrap host
            assert await client.related(answer) is None  # localhost is ::1: refused
    assert judged == ["::1"]
    rdap.clear_bootstrap_cache()


async def test_a_refused_registry_is_a_private_address_failure(judged: list[str]) -> None:
    with FakeWhoisServer(referrals={"io": "whois.nic.io"}) as iana:
        book = {"whois.iana.org": iana.address, "whois.nic.io": ("10.1.2.3", 43)}
        with pytest.raises(RegistryLookupError) as caught:
            await whois.query_whois("google.io", GUARDED_SETTINGS, address_book=book)
    assert caught.value.kind == LookupFailureKind.PRIVATE_ADDRESS
    assert caught.value.message.startswith("refused to connect to 10.1.2.3: ")
