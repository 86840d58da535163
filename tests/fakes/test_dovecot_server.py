"""The real Dovecot through imaplib and poplib: STARTTLS/STLS, implicit TLS, login."""

from __future__ import annotations

import imaplib
import poplib

import pytest

from tests.fakes.clients import client_context, peer_leaf
from tests.fakes.dovecot_server import DovecotServer, dovecot_unavailable
from tests.fakes.dovecot_server import dovecot_server as dovecot_server  # fixture

pytestmark = pytest.mark.skipif(
    dovecot_unavailable() is not None, reason=str(dovecot_unavailable())
)


def test_imap_starttls_then_login(dovecot_server: DovecotServer) -> None:
    client = imaplib.IMAP4("127.0.0.1", dovecot_server.imap_port, timeout=10)
    assert "STARTTLS" in client.capabilities  # no LOGINDISABLED: loopback counts as secured
    client.starttls(client_context())
    leaf = peer_leaf(client.sock)
    assert leaf == dovecot_server.certificate.chain_der[0]
    assert client.login("alerts", dovecot_server.password)[0] == "OK"
    client.logout()


def test_imaps_and_pop3s_serve_the_certificate(dovecot_server: DovecotServer) -> None:
    imaps = imaplib.IMAP4_SSL(
        "127.0.0.1", dovecot_server.imaps_port, ssl_context=client_context(), timeout=10
    )
    assert peer_leaf(imaps.sock) == dovecot_server.certificate.chain_der[0]
    imaps.logout()
    pop3s = poplib.POP3_SSL(
        "127.0.0.1", dovecot_server.pop3s_port, context=client_context(), timeout=10
    )
    assert peer_leaf(pop3s.sock) == dovecot_server.certificate.chain_der[0]
    pop3s.quit()


def test_pop3_stls_then_login(dovecot_server: DovecotServer) -> None:
    client = poplib.POP3("127.0.0.1", dovecot_server.pop3_port, timeout=10)
    assert "STLS" in client.capa()
    client.stls(client_context())
    client.user("alerts")
    assert client.pass_(dovecot_server.password).startswith(b"+OK")
    client.quit()
