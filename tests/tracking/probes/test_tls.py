"""RealTlsProbe against the local fake servers of tests/fakes/tls_server.py."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from datetime import UTC, datetime

import pytest
from cryptography import x509

from tests.fakes import tls_server as fake
from tests.fakes.tls_server import FakeTlsServer, NonTlsServer, SilentServer

# Fixtures (the explicit "as" marks them as used on purpose).
from tests.fakes.tls_server import closed_port as closed_port
from tests.fakes.tls_server import non_tls_server as non_tls_server
from tests.fakes.tls_server import silent_server as silent_server
from tests.fakes.tls_server import tls_server as tls_server
from tracking.core import clock
from tracking.core.errors import MESSAGES, ErrorCode, ProbeError
from tracking.core.settings import Settings
from tracking.core.sources import HostSource
from tracking.probes.tls import RealTlsProbe, TlsProbe, TlsProbeError, unverified_chain

TIMEOUT = 1.0
LOCAL = Settings(allow_private_targets=True, probe_timeout_s=TIMEOUT)
GUARDED = Settings(allow_private_targets=False, probe_timeout_s=TIMEOUT)
FROZEN = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


class StaticResolver:
    """Answers from a table; unknown names are not found, like the real resolver."""

    def __init__(self, answers: Mapping[str, Sequence[str]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.asked: list[str] = []
        self.given: list[tuple[str, int]] = []

    async def resolve_addresses(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise ProbeError(ErrorCode.CERTIFICATE_NOT_FOUND)
        return list(self.answers[host])

    async def address_groups(self, host: str) -> AsyncGenerator[list[str], None]:
        """IPv4 addresses, then IPv6 ones; each group recorded in ``given`` when handed out."""
        addresses = await self.resolve_addresses(host)
        for family in (4, 6):
            group = [a for a in addresses if (":" in a) == (family == 6)]
            if group:
                self.given.append((host, family))
                yield group


class SlowFamiliesResolver:
    """Its A look-up finds nothing and its AAAA look-up finds 127.0.0.1 (a test stand-in for
    ::1), each taking ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def resolve_addresses(self, host: str) -> list[str]:
        raise AssertionError("the TLS probe asks for address groups")

    async def address_groups(self, host: str) -> AsyncGenerator[list[str], None]:
        await asyncio.sleep(self.delay)
        yield []
        await asyncio.sleep(self.delay)
        yield ["127.0.0.1"]


class HangingResolver:
    async def resolve_addresses(self, host: str) -> list[str]:
        await asyncio.sleep(60)
        return []

    async def address_groups(self, host: str) -> AsyncGenerator[list[str], None]:
        yield await self.resolve_addresses(host)


def loopback_resolver() -> StaticResolver:
    names = [fake.GOOD, fake.EXPIRED, fake.SELF_SIGNED, fake.WRONG_HOST, "unknown.test"]
    return StaticResolver({name: ["127.0.0.1"] for name in names})


def probe(settings: Settings = LOCAL, resolver: StaticResolver | None = None) -> RealTlsProbe:
    return RealTlsProbe(settings, resolver or loopback_resolver())


def certificate(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    with clock.use_clock(lambda: FROZEN):
        yield


def assert_probe_error(exc: ProbeError, code: ErrorCode) -> None:
    assert exc.code is code
    assert exc.message == MESSAGES[code]  # the contract's words, not the technical cause
    assert isinstance(exc, TlsProbeError) and exc.detail


# -- retrieval ----------------------------------------------------------------------------------


def test_real_probe_is_a_tls_probe() -> None:
    _: TlsProbe = probe()


@pytest.mark.parametrize(
    "name", [fake.GOOD, fake.EXPIRED, fake.SELF_SIGNED, fake.WRONG_HOST, "unknown.test"]
)
async def test_sni_picks_the_certificate(tls_server: FakeTlsServer, name: str) -> None:
    handshake = await probe().fetch_chain(HostSource(name, tls_server.port))

    expected = fake.standard_certificates().get(name, fake.default_certificate())
    assert handshake.chain_der == expected.chain_der
    assert handshake.server_name == name
    assert tls_server.server_names_seen == [name]
    assert (handshake.host, handshake.port, handshake.address) == (
        name,
        tls_server.port,
        "127.0.0.1",
    )
    assert handshake.retrieved_at == FROZEN


async def test_chain_is_leaf_then_intermediate(tls_server: FakeTlsServer) -> None:
    handshake = await probe().fetch_chain(HostSource(fake.GOOD, tls_server.port))

    leaf, intermediate = (certificate(der) for der in handshake.chain_der)
    ca = fake.standard_certificates()[fake.GOOD]
    assert leaf == ca.leaf.cert
    assert intermediate == ca.chain[1].cert
    assert leaf.issuer == intermediate.subject
    assert handshake.protocol == "TLSv1.3"
    assert handshake.cipher


async def test_expired_certificate_is_retrieved(tls_server: FakeTlsServer) -> None:
    handshake = await probe().fetch_chain(HostSource(fake.EXPIRED, tls_server.port))

    assert certificate(handshake.chain_der[0]).not_valid_after_utc < datetime.now(UTC)


async def test_self_signed_certificate_is_retrieved(tls_server: FakeTlsServer) -> None:
    handshake = await probe().fetch_chain(HostSource(fake.SELF_SIGNED, tls_server.port))

    (only,) = (certificate(der) for der in handshake.chain_der)
    assert only.issuer == only.subject


async def test_wrong_host_certificate_is_retrieved(tls_server: FakeTlsServer) -> None:
    handshake = await probe().fetch_chain(HostSource(fake.WRONG_HOST, tls_server.port))

    san = certificate(handshake.chain_der[0]).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.DNSName) == [fake.OTHER_HOST]


async def test_ip_literal_sends_no_sni_and_skips_the_resolver(tls_server: FakeTlsServer) -> None:
    resolver = loopback_resolver()

    handshake = await probe(resolver=resolver).fetch_chain(HostSource("127.0.0.1", tls_server.port))

    assert handshake.server_name is None
    assert tls_server.server_names_seen == [None]
    assert handshake.chain_der == fake.default_certificate().chain_der
    assert resolver.asked == []


async def test_trailing_dot_is_not_sent_in_sni(tls_server: FakeTlsServer) -> None:
    resolver = StaticResolver({"good.test.": ["127.0.0.1"]})

    handshake = await probe(resolver=resolver).fetch_chain(
        HostSource("good.test.", tls_server.port)
    )

    assert tls_server.server_names_seen == [fake.GOOD]
    assert handshake.chain_der == fake.standard_certificates()[fake.GOOD].chain_der


async def test_addresses_are_tried_in_order(tls_server: FakeTlsServer) -> None:
    # The server listens on 127.0.0.1 only, so 127.0.0.2 refuses the connection.
    resolver = StaticResolver({fake.GOOD: ["127.0.0.2", "127.0.0.1"]})

    handshake = await probe(resolver=resolver).fetch_chain(HostSource(fake.GOOD, tls_server.port))

    assert handshake.address == "127.0.0.1"
    assert len(tls_server.connections) == 1


async def test_ipv6_addresses_are_wanted_only_when_no_ipv4_address_connects(
    tls_server: FakeTlsServer,
) -> None:
    resolver = StaticResolver({fake.GOOD: ["::1", "127.0.0.1"]})
    handshake = await probe(resolver=resolver).fetch_chain(HostSource(fake.GOOD, tls_server.port))
    assert handshake.address == "127.0.0.1"
    assert resolver.given == [(fake.GOOD, 4)]

    # The server listens on 127.0.0.1 only: 127.0.0.2 and ::1 both refuse the connection.
    resolver = StaticResolver({fake.GOOD: ["::1", "127.0.0.2"]})
    with pytest.raises(ProbeError) as caught:
        await probe(resolver=resolver).fetch_chain(HostSource(fake.GOOD, tls_server.port))
    assert resolver.given == [(fake.GOOD, 4), (fake.GOOD, 6)]
    assert_probe_error(caught.value, ErrorCode.CERTIFICATE_NOT_FOUND)
    assert isinstance(caught.value, TlsProbeError)
    port = tls_server.port
    assert caught.value.detail.startswith(f"127.0.0.2:{port}: ")
    assert f"; [::1]:{port}: " in caught.value.detail


async def test_old_tls_1_0_server_still_answers() -> None:
    certificates = fake.standard_certificates()
    old = FakeTlsServer(
        certificates,
        minimum_version=ssl.TLSVersion.TLSv1,
        maximum_version=ssl.TLSVersion.TLSv1,
    )
    with old:
        handshake = await probe().fetch_chain(HostSource(fake.GOOD, old.port))

    assert handshake.protocol == "TLSv1"
    assert handshake.chain_der == certificates[fake.GOOD].chain_der


# -- failures -----------------------------------------------------------------------------------


async def test_non_tls_port_gives_no_ssl_details(non_tls_server: NonTlsServer) -> None:
    with pytest.raises(ProbeError) as caught:
        await probe().fetch_chain(HostSource(fake.GOOD, non_tls_server.port))

    assert_probe_error(caught.value, ErrorCode.SSL_DETAILS_UNAVAILABLE)
    assert caught.value.__cause__ is not None  # the technical cause stays for the logs


async def test_silent_port_times_out(silent_server: SilentServer) -> None:
    started = time.monotonic()
    with pytest.raises(ProbeError) as caught:
        await probe().fetch_chain(HostSource(fake.GOOD, silent_server.port))

    assert_probe_error(caught.value, ErrorCode.SSL_DETAILS_UNAVAILABLE)
    assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + 1.0
    assert len(silent_server.connections) == 1


async def test_closed_port_is_not_found(closed_port: int) -> None:
    with pytest.raises(ProbeError) as caught:
        await probe().fetch_chain(HostSource(fake.GOOD, closed_port))

    assert_probe_error(caught.value, ErrorCode.CERTIFICATE_NOT_FOUND)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


async def test_connect_timeout_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    # A black-holed address cannot be set up portably, so the connect itself hangs.
    async def hang(*_: object) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(asyncio.get_running_loop(), "sock_connect", hang)
    started = time.monotonic()
    with pytest.raises(ProbeError) as caught:
        await probe().fetch_chain(HostSource(fake.GOOD, 443))

    assert_probe_error(caught.value, ErrorCode.CERTIFICATE_NOT_FOUND)
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert time.monotonic() - started < TIMEOUT + 1.0


async def test_unresolvable_name_is_not_found() -> None:
    with pytest.raises(ProbeError) as caught:
        await probe().fetch_chain(HostSource("lalala.test", 443))

    assert caught.value.code is ErrorCode.CERTIFICATE_NOT_FOUND


async def test_empty_answer_is_not_found() -> None:
    resolver = StaticResolver({"empty.test": []})
    with pytest.raises(ProbeError) as caught:
        await probe(resolver=resolver).fetch_chain(HostSource("empty.test", 443))

    assert_probe_error(caught.value, ErrorCode.CERTIFICATE_NOT_FOUND)


async def test_each_look_up_has_the_whole_timeout(tls_server: FakeTlsServer) -> None:
    """A and AAAA together may take longer than one timeout: each is a step of its own."""
    started = time.monotonic()
    handshake = await RealTlsProbe(LOCAL, SlowFamiliesResolver(0.6 * TIMEOUT)).fetch_chain(
        HostSource(fake.GOOD, tls_server.port)
    )
    assert handshake.address == "127.0.0.1"
    assert time.monotonic() - started >= 1.2 * TIMEOUT


async def test_resolution_has_a_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(ProbeError) as caught:
        await RealTlsProbe(LOCAL, HangingResolver()).fetch_chain(HostSource("slow.test", 443))

    assert_probe_error(caught.value, ErrorCode.CERTIFICATE_NOT_FOUND)
    assert time.monotonic() - started < TIMEOUT + 1.0


# -- private-address guard ----------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["127.0.0.1", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]"])
async def test_private_literal_is_refused_without_connecting(
    tls_server: FakeTlsServer, literal: str
) -> None:
    resolver = loopback_resolver()
    with pytest.raises(ProbeError) as caught:
        await probe(GUARDED, resolver).fetch_chain(HostSource(literal, tls_server.port))

    assert_probe_error(caught.value, ErrorCode.PRIVATE_ADDRESS_REFUSED)
    assert tls_server.connections == []
    assert resolver.asked == []


async def test_name_resolving_to_loopback_is_refused(tls_server: FakeTlsServer) -> None:
    # DNS rebinding: a public-looking name whose answer points inside.
    resolver = StaticResolver({"public.example.com": ["127.0.0.1"]})
    with pytest.raises(ProbeError) as caught:
        await probe(GUARDED, resolver).fetch_chain(
            HostSource("public.example.com", tls_server.port)
        )

    assert_probe_error(caught.value, ErrorCode.PRIVATE_ADDRESS_REFUSED)
    assert tls_server.connections == []


async def test_every_private_answer_is_refused(tls_server: FakeTlsServer) -> None:
    resolver = StaticResolver({"mixed.example.com": ["10.0.0.1", "::ffff:127.0.0.1", "127.0.0.1"]})
    with pytest.raises(ProbeError) as caught:
        await probe(GUARDED, resolver).fetch_chain(HostSource("mixed.example.com", tls_server.port))

    assert_probe_error(caught.value, ErrorCode.PRIVATE_ADDRESS_REFUSED)
    assert tls_server.connections == []


# -- the chain helper ---------------------------------------------------------------------------


def test_unverified_chain_falls_back_to_the_leaf() -> None:
    class LeafOnly:
        def getpeercert(self, binary_form: bool) -> bytes:
            return b"leaf"

    assert unverified_chain(LeafOnly()) == (b"leaf",)  # type: ignore[arg-type]
