"""The TLS probe through every protocol's opener: real servers where the fixtures have them
(aiosmtpd, PostgreSQL with ssl=on, Dovecot), the RFC-faithful fakes otherwise, each refusal and
each hostile server."""

from __future__ import annotations

import time

import pytest

from tests.fakes.dovecot_server import DovecotServer
from tests.fakes.dovecot_server import dovecot_server as dovecot_server  # fixture
from tests.fakes.postgres_server import PostgresTlsServer
from tests.fakes.postgres_server import postgres_tls_server as postgres_tls_server  # fixture
from tests.fakes.smtp_server import FakeSmtpServer, SmtpMode
from tests.fakes.starttls_servers import HOSTILE, Behaviour, server_for
from tests.fakes.tls_server import ServedCertificate
from tracking.core.errors import ErrorCode, ProbeError
from tracking.core.settings import Settings
from tracking.core.sources import SCHEMES, HostSource
from tracking.probes.openers import OPENERS, Opener
from tracking.probes.openers_wire import MAX_ANSWER_BYTES
from tracking.probes.resolver import SystemResolver
from tracking.probes.tls import RealTlsProbe, TlsHandshake, TlsProbeError

TIMEOUT = 1.0
LOCAL = Settings(allow_private_targets=True, probe_timeout_s=TIMEOUT)

# Every scheme of the contract but http(s), as parse_ssl_source stores it.
PROTOCOLS = {
    "smtp": "smtp",
    "submission": "submission",
    "smtps": "smtps",
    "imap": "imap",
    "imaps": "imaps",
    "pop3": "pop3",
    "pop3s": "pop3s",
    "ftp": "ftp",
    "ldap": "ldap",
    "ldaps": "ldaps",
    "xmpp": "xmpp",
    "postgres": "postgres",
    "postgresql": "postgres",
}
STARTTLS_SCHEMES = ["smtp", "submission", "imap", "pop3", "ftp", "ldap", "xmpp", "postgres"]
IMPLICIT_SCHEMES = ["smtps", "imaps", "pop3s", "ldaps"]


def probe() -> RealTlsProbe:
    return RealTlsProbe(LOCAL, SystemResolver(TIMEOUT))


async def fetch(scheme: str, port: int, host: str = "127.0.0.1") -> TlsHandshake:
    return await probe().fetch_chain(HostSource(host, port, PROTOCOLS[scheme]))


def assert_served(handshake: TlsHandshake, certificate: ServedCertificate) -> None:
    assert handshake.chain_der == certificate.chain_der
    assert handshake.protocol is not None and handshake.protocol.startswith("TLSv1")
    assert handshake.cipher


def test_every_scheme_has_an_opener() -> None:
    """The table and the schemes agree: adding one without the other fails here."""
    stored = {PROTOCOLS.get(s, s) for s in SCHEMES} - {"http"}
    assert stored | {"tls"} == set(OPENERS)
    assert not OPENERS["tls"].speaks and not OPENERS["https"].speaks
    assert all(OPENERS[s].speaks for s in STARTTLS_SCHEMES)
    assert not any(OPENERS[s].speaks for s in IMPLICIT_SCHEMES)
    assert all(isinstance(o, Opener) for o in OPENERS.values())


# -- the fakes: the RFC's exchange, then TLS ----------------------------------------------------


@pytest.mark.parametrize("scheme", list(PROTOCOLS))
async def test_each_scheme_reaches_the_certificate(scheme: str) -> None:
    with server_for(scheme) as server:
        handshake = await fetch(scheme, server.port, host="localhost")
    assert_served(handshake, server.certificate)
    [session] = server.sessions
    assert session.handshake_ok and session.server_name == "localhost"  # SNI sent


async def test_smtp_says_ehlo_with_our_address_then_starttls() -> None:
    with server_for("smtp") as server:
        await fetch("smtp", server.port)
    assert server.sessions[0].received[:2] == ["EHLO [127.0.0.1]", "STARTTLS"]


async def test_imap_pop3_ftp_send_one_command() -> None:
    received = {}
    for scheme in ("imap", "pop3", "ftp"):
        with server_for(scheme) as server:
            await fetch(scheme, server.port)
        received[scheme] = server.sessions[0].received
    assert received == {"imap": ["a1 STARTTLS"], "pop3": ["STLS"], "ftp": ["AUTH TLS"]}


async def test_xmpp_names_the_host_in_its_stream() -> None:
    with server_for("xmpp") as server:
        await fetch("xmpp", server.port, host="localhost")
    first, second = server.sessions[0].received[:2]
    assert 'to="localhost"' in first and "version='1.0'" in first
    assert second == "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"


# -- refusals and hostile servers ---------------------------------------------------------------


@pytest.mark.parametrize("scheme", STARTTLS_SCHEMES)
async def test_no_starttls_is_ssl_details_unavailable(scheme: str) -> None:
    with server_for(scheme, Behaviour.NO_STARTTLS) as server, pytest.raises(ProbeError) as caught:
        await fetch(scheme, server.port)
    assert caught.value.code is ErrorCode.SSL_DETAILS_UNAVAILABLE
    assert isinstance(caught.value, TlsProbeError) and "before TLS" in caught.value.detail
    assert not server.sessions[0].handshake_ok


@pytest.mark.parametrize("scheme", STARTTLS_SCHEMES)
async def test_starttls_against_implicit_tls_fails_cleanly(scheme: str) -> None:
    """A STARTTLS scheme pointed at a TLS port: the ClientHello-less exchange gets nothing
    readable, and the probe gives up within its timeout."""
    with server_for(scheme, Behaviour.IMPLICIT_TLS) as server:
        started = time.monotonic()
        with pytest.raises(ProbeError) as caught:
            await fetch(scheme, server.port)
    assert caught.value.code is ErrorCode.SSL_DETAILS_UNAVAILABLE
    assert time.monotonic() - started < TIMEOUT + 1.0


HOSTILE_CASES = [
    (scheme, behaviour)
    for scheme in [*STARTTLS_SCHEMES, *IMPLICIT_SCHEMES]
    for behaviour in HOSTILE
]


@pytest.mark.parametrize(
    ("scheme", "behaviour"), HOSTILE_CASES, ids=[f"{s}-{b}" for s, b in HOSTILE_CASES]
)
async def test_hostile_servers_end_quickly(scheme: str, behaviour: Behaviour) -> None:
    """Talking forever, a huge line, silence: a clean SSL_DETAILS_UNAVAILABLE within the
    timeout, having read no more than the bound."""
    with server_for(scheme, behaviour) as server:
        started = time.monotonic()
        with pytest.raises(ProbeError) as caught:
            await fetch(scheme, server.port)
        elapsed = time.monotonic() - started
    assert caught.value.code is ErrorCode.SSL_DETAILS_UNAVAILABLE
    assert elapsed < TIMEOUT + 1.0
    if behaviour is not Behaviour.SILENT and scheme in STARTTLS_SCHEMES:
        assert elapsed < TIMEOUT  # the read bound ends it, not the timeout
        detail = caught.value.detail  # type: ignore[attr-defined]
        assert str(MAX_ANSWER_BYTES) in detail or "PostgreSQL" in detail or "LDAP" in detail


# -- real servers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "scheme"), [(SmtpMode.STARTTLS, "submission"), (SmtpMode.SMTPS, "smtps")]
)
async def test_aiosmtpd(mode: SmtpMode, scheme: str) -> None:
    with FakeSmtpServer(mode) as smtp:
        handshake = await fetch(scheme, smtp.port)
    assert_served(handshake, smtp.certificate)


async def test_aiosmtpd_without_starttls() -> None:
    with FakeSmtpServer(SmtpMode.PLAIN) as smtp, pytest.raises(ProbeError) as caught:
        await fetch("smtp", smtp.port)
    assert caught.value.code is ErrorCode.SSL_DETAILS_UNAVAILABLE
    assert "STARTTLS is not among" in caught.value.detail  # type: ignore[attr-defined]


async def test_real_postgresql(postgres_tls_server: PostgresTlsServer) -> None:
    handshake = await fetch("postgresql", postgres_tls_server.port, host="localhost")
    assert_served(handshake, postgres_tls_server.certificate)


async def test_real_postgresql_without_ssl() -> None:
    pytest.importorskip("psycopg")
    from tests.fakes.postgres_server import pg_bin

    if pg_bin() is None:
        pytest.skip("PostgreSQL's server binaries are not installed")
    with PostgresTlsServer(ssl=False) as server, pytest.raises(ProbeError) as caught:
        await fetch("postgres", server.port)
    assert caught.value.code is ErrorCode.SSL_DETAILS_UNAVAILABLE
    assert "does not accept TLS" in caught.value.detail  # type: ignore[attr-defined]


@pytest.mark.parametrize("scheme", ["imap", "imaps", "pop3", "pop3s"])
async def test_real_dovecot(dovecot_server: DovecotServer, scheme: str) -> None:
    handshake = await fetch(scheme, dovecot_server.ports[scheme])
    assert_served(handshake, dovecot_server.certificate)
