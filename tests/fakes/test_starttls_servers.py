"""The STARTTLS servers through real clients (imaplib, poplib, ftplib, openssl s_client, raw
BER / PostgreSQL bytes), each refusal, and the hostile behaviours."""

from __future__ import annotations

import ftplib
import imaplib
import poplib
import smtplib
import socket
import time
from collections.abc import Callable

import pytest

from tests.fakes.clients import client_context, needs_openssl, peer_leaf, s_client_chain
from tests.fakes.starttls_client_first import (
    LdapServer,
    PostgresServer,
    XmppServer,
    ssl_request,
    starttls_request,
    starttls_response,
)
from tests.fakes.starttls_client_first import ldaps_server as ldaps_server  # fixture
from tests.fakes.starttls_servers import (
    HUGE_LINE_SIZE,
    Behaviour,
    FtpServer,
    ImapServer,
    Pop3Server,
    SmtpServer,
    StartTlsServer,
    server_for,
)
from tests.fakes.starttls_servers import imap_server as imap_server  # fixture
from tests.fakes.starttls_servers import starttls_server as starttls_server  # fixture

Factory = Callable[..., StartTlsServer]


def leaf_der(server: StartTlsServer) -> bytes:
    return server.certificate.chain_der[0]


# -- real clients ----------------------------------------------------------------------------


def test_imap_starttls_with_imaplib(imap_server: StartTlsServer) -> None:
    client = imaplib.IMAP4("127.0.0.1", imap_server.port, timeout=10)
    assert "STARTTLS" in client.capabilities
    client.starttls(client_context())
    assert peer_leaf(client.sock) == leaf_der(imap_server)
    assert "STARTTLS" not in client.capabilities  # asked again inside TLS
    assert client.noop()[0] == "OK"
    client.logout()
    [session] = imap_server.sessions
    assert [line.split(" ", 1)[1] for line in session.received] == [
        "CAPABILITY", "STARTTLS", "CAPABILITY", "NOOP", "LOGOUT",
    ]  # fmt: skip
    assert session.handshake_ok


def test_imaps_with_imaplib(starttls_server: Factory) -> None:
    server = starttls_server("imaps")
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=client_context(), timeout=10)
    assert peer_leaf(client.sock) == leaf_der(server)
    assert "STARTTLS" not in client.capabilities
    client.logout()


def test_imap_without_starttls(starttls_server: Factory) -> None:
    server = starttls_server("imap", Behaviour.NO_STARTTLS)
    client = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="TLS not supported"):
        client.starttls(client_context())  # imaplib refuses, as STARTTLS is not offered
    with pytest.raises(imaplib.IMAP4.error, match=r"BAD.*STARTTLS not available"):
        client._simple_command("STARTTLS")  # and the server would refuse it
    client.logout()


def test_pop3_stls_with_poplib(starttls_server: Factory) -> None:
    server = starttls_server("pop3")
    client = poplib.POP3("127.0.0.1", server.port, timeout=10)
    assert client.getwelcome().startswith(b"+OK")
    assert "STLS" in client.capa()
    client.stls(client_context())
    assert peer_leaf(client.sock) == leaf_der(server)
    assert "STLS" not in client.capa()
    client.quit()
    assert server.sessions[0].received == ["CAPA", "CAPA", "STLS", "CAPA", "QUIT"]


def test_pop3s_and_pop3_without_stls(starttls_server: Factory) -> None:
    pop3s = starttls_server("pop3s")
    secure = poplib.POP3_SSL("127.0.0.1", pop3s.port, context=client_context(), timeout=10)
    assert peer_leaf(secure.sock) == leaf_der(pop3s)
    secure.quit()
    plain = starttls_server("pop3", Behaviour.NO_STARTTLS)
    client = poplib.POP3("127.0.0.1", plain.port, timeout=10)
    assert "STLS" not in client.capa()
    with pytest.raises(poplib.error_proto):
        client.stls(client_context())
    with pytest.raises(poplib.error_proto, match="STLS not available"):
        client._shortcmd("STLS")  # type: ignore[attr-defined]  # the server refuses it too
    client.quit()


def test_ftp_auth_tls_with_ftplib(starttls_server: Factory) -> None:
    server = starttls_server("ftp")
    client = ftplib.FTP_TLS(context=client_context(), timeout=10)
    assert client.connect("127.0.0.1", server.port).startswith("220")
    assert "AUTH TLS" in client.sendcmd("FEAT")
    assert client.auth().startswith("234")
    assert peer_leaf(client.sock) == leaf_der(server)
    client.prot_p()
    client.quit()
    assert server.sessions[0].received[1:] == ["AUTH TLS", "PBSZ 0", "PROT P", "QUIT"]


def test_ftp_without_auth_tls(starttls_server: Factory) -> None:
    server = starttls_server("ftp", Behaviour.NO_STARTTLS)
    client = ftplib.FTP_TLS(context=client_context(), timeout=10)
    client.connect("127.0.0.1", server.port)
    assert "AUTH TLS" not in client.sendcmd("FEAT")
    with pytest.raises(ftplib.error_perm, match="502"):
        client.auth()
    client.quit()


def test_smtp_starttls_with_smtplib(starttls_server: Factory) -> None:
    server = starttls_server("submission")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=client_context())
        assert peer_leaf(client.sock) == leaf_der(server)
        client.ehlo()
        assert not client.has_extn("starttls")
    refusing = starttls_server("smtp", Behaviour.NO_STARTTLS)
    with smtplib.SMTP("127.0.0.1", refusing.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPNotSupportedError):
            client.starttls(context=client_context())
        assert client.docmd("STARTTLS")[0] == 502


# -- LDAP and PostgreSQL on the wire --------------------------------------------------------------

# RFC 4511 ExtendedRequest/Response for StartTLS, encoded by hand independently of the fake.
OID_HEX = b"1.3.6.1.4.1.1466.20037".hex()
STARTTLS_REQUEST_HEX = "301d02010177188016" + OID_HEX
STARTTLS_RESPONSE_HEX = "302402010178" + "1f" + "0a0100" + "0400" + "0400" + "8a16" + OID_HEX


def exchange(port: int, request: bytes, size: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(request)
    answer = b""
    while len(answer) < size and (chunk := sock.recv(size - len(answer))):
        answer += chunk
    return sock, answer


def test_ldap_starttls_bytes_then_tls(starttls_server: Factory) -> None:
    assert starttls_request().hex() == STARTTLS_REQUEST_HEX
    server = starttls_server("ldap")
    raw, answer = exchange(server.port, bytes.fromhex(STARTTLS_REQUEST_HEX), 38)
    assert answer.hex() == STARTTLS_RESPONSE_HEX
    with raw, client_context().wrap_socket(raw, server_hostname="ldap.test") as tls:
        assert tls.getpeercert(binary_form=True) == leaf_der(server)
        tls.sendall(bytes.fromhex("300c020102600702010304008000"))  # simple bind, anonymous
        assert tls.recv(100).hex() == "300c02010261070a010004000400"
        tls.sendall(bytes.fromhex("30050201034200"))  # unbind
    [session] = server.sessions
    assert session.handshake_ok and session.server_name == "ldap.test"


def test_ldap_without_starttls_answers_protocol_error(starttls_server: Factory) -> None:
    server = starttls_server("ldap", Behaviour.NO_STARTTLS)
    expected = starttls_response(5, 2, b"StartTLS not supported")
    raw, answer = exchange(server.port, starttls_request(5), len(expected))
    raw.close()
    assert answer == expected and answer[7:10] == b"\x0a\x01\x02"  # resultCode protocolError


def test_ldaps_serves_tls_at_once(ldaps_server: StartTlsServer) -> None:
    with (
        socket.create_connection(("127.0.0.1", ldaps_server.port), timeout=10) as raw,
        client_context().wrap_socket(raw) as tls,
    ):
        assert tls.getpeercert(binary_form=True) == leaf_der(ldaps_server)
        tls.sendall(starttls_request(7))  # StartTLS inside TLS: operationsError
        assert tls.recv(1000)[7:10] == b"\x0a\x01\x01"


def test_postgres_ssl_request(starttls_server: Factory) -> None:
    server = starttls_server("postgres")
    raw, answer = exchange(server.port, ssl_request(), 1)
    assert answer == b"S"
    with raw, client_context().wrap_socket(raw) as tls:
        assert tls.getpeercert(binary_form=True) == leaf_der(server)
    refusing = starttls_server("postgres", Behaviour.NO_STARTTLS)
    raw, answer = exchange(refusing.port, ssl_request(), 1)
    raw.close()
    assert answer == b"N"


# -- openssl s_client for every protocol ---------------------------------------------------------

S_CLIENT = {
    SmtpServer: ("smtp", ()),
    ImapServer: ("imap", ()),
    Pop3Server: ("pop3", ()),
    FtpServer: ("ftp", ()),
    XmppServer: ("xmpp", ("-xmpphost", "xmpp.test")),
    LdapServer: ("ldap", ()),
    PostgresServer: ("postgres", ()),
}


@needs_openssl
@pytest.mark.parametrize("server_class", S_CLIENT, ids=lambda c: c.protocol)
def test_openssl_starttls_reads_the_chain(server_class: type[StartTlsServer]) -> None:
    starttls, extra = S_CLIENT[server_class]
    with server_class() as server:
        chain = s_client_chain(
            server.port, starttls=starttls, extra=("-servername", "sni.test", *extra)
        )
        assert chain == list(server.certificate.certificates)
        assert server.sessions[0].server_name == "sni.test"
    if starttls in ("smtp", "imap", "xmpp"):
        return  # s_client then sends its ClientHello anyway and waits, as the server does
    with server_class(Behaviour.NO_STARTTLS) as server:
        assert s_client_chain(server.port, starttls=starttls, extra=extra) == []
        assert not server.sessions[0].handshake_ok


@needs_openssl
@pytest.mark.parametrize("scheme", ["smtps", "imaps", "pop3s", "ldaps"])
def test_openssl_reads_implicit_tls(scheme: str) -> None:
    with server_for(scheme) as server:
        assert s_client_chain(server.port) == list(server.certificate.certificates)


def test_xmpp_stream_and_refusal(starttls_server: Factory) -> None:
    header = (
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        b"xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>"
    )
    server = starttls_server("xmpp", Behaviour.NO_STARTTLS)
    raw, answer = exchange(server.port, header, 1)
    with raw:
        raw.settimeout(2)
        while b"</stream:features>" not in answer:
            answer += raw.recv(4096)
        assert b"from='example.test'" in answer and b"<starttls" not in answer
        raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        answer = raw.recv(4096)
        assert answer == b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"


# -- hostile behaviours ------------------------------------------------------------------------

FIRST_WORDS = {
    "smtp": b"",
    "imap": b"",
    "pop3": b"",
    "ftp": b"",
    "xmpp": b"<stream:stream xmlns='jabber:client' to='xmpp.test' version='1.0'>",
    "ldap": starttls_request(),
    "postgres": ssl_request(),
}


def receive(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size and (chunk := sock.recv(min(size - len(data), 1 << 20))):
        data += chunk
    return bytes(data)


@pytest.mark.parametrize("protocol", FIRST_WORDS)
def test_talks_forever_never_ends_a_line(starttls_server: Factory, protocol: str) -> None:
    server = starttls_server(protocol, Behaviour.TALKS_FOREVER)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(FIRST_WORDS[protocol])
        data = receive(sock, 8 * 1024 * 1024)
    prefix = server.talk_prefix()
    assert len(data) == 8 * 1024 * 1024 and data.startswith(prefix)
    assert set(data[len(prefix) :]) == {ord("x")}  # no line end, no closing bracket


@pytest.mark.parametrize("protocol", FIRST_WORDS)
def test_huge_line_is_several_mib_long(starttls_server: Factory, protocol: str) -> None:
    server = starttls_server(protocol, Behaviour.HUGE_LINE)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(FIRST_WORDS[protocol])
        data = receive(sock, len(server.huge_message()))
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):  # then silence
            sock.recv(1)
    assert data == server.huge_message() and len(data) > HUGE_LINE_SIZE


@pytest.mark.parametrize("protocol", FIRST_WORDS)
def test_silent_never_says_a_word(starttls_server: Factory, protocol: str) -> None:
    server = starttls_server(protocol, Behaviour.SILENT)
    with socket.create_connection(("127.0.0.1", server.port), timeout=0.2) as sock:
        sock.sendall(FIRST_WORDS[protocol])
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_close_is_prompt_while_talking_to_a_client_that_does_not_read() -> None:
    server = server_for("imap", Behaviour.TALKS_FOREVER).start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.recv(10)
        time.sleep(0.1)  # the server is now blocked sending
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 2


def test_close_is_prompt_with_an_idle_client_after_starttls() -> None:
    server = server_for("pop3").start()
    client = poplib.POP3("127.0.0.1", server.port, timeout=10)
    client.stls(client_context())
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 2
    with pytest.raises((poplib.error_proto, OSError)):
        client.noop()
    client.close()
