"""The SMTP fake through smtplib and openssl s_client: STARTTLS, SMTPS, AUTH, records, rejects."""

from __future__ import annotations

import smtplib
import socket
import time
from email.message import EmailMessage

import pytest

from tests.fakes.clients import client_context, needs_openssl, peer_leaf, s_client_chain
from tests.fakes.smtp_server import FakeSmtpServer, SmtpMode, smtp_certificate
from tests.fakes.smtp_server import smtp_server as smtp_server  # fixture


def mail(subject: str = "[dstrack] Certificate a.test expires in 7 days") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "dstrack@example.com"
    message["To"] = "ops@example.com"
    message["Subject"] = subject
    message.set_content("Device a.test\nOrganization: Ops\n")
    return message


def test_starttls_then_auth_then_send_records_everything() -> None:
    with FakeSmtpServer(auth=("alerts", "s3cret")) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            assert not client.has_extn("auth")  # only after TLS, like real servers
            client.starttls(context=client_context())
            assert peer_leaf(client.sock) == smtp_certificate().chain_der[0]
            client.ehlo()
            client.login("alerts", "s3cret")
            client.send_message(mail(), to_addrs=["ops@example.com", "cto@example.com"])
        [received] = server.wait_for_messages(1)
    assert received.mail_from == "dstrack@example.com"
    assert received.rcpt_tos == ["ops@example.com", "cto@example.com"]
    assert received.subject == "[dstrack] Certificate a.test expires in 7 days"
    assert received.headers["to"] == "ops@example.com"
    assert received.body == "Device a.test\nOrganization: Ops\n"
    assert received.tls and received.auth_user == "alerts"
    assert server.url == f"smtp://alerts:s3cret@127.0.0.1:{server.port}"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_mechanisms_accept_only_the_configured_pair(mechanism: str) -> None:
    with FakeSmtpServer(SmtpMode.SMTPS, auth=("alerts", "s3cret")) as server:
        with smtplib.SMTP_SSL(
            server.host, server.port, context=client_context(), timeout=10
        ) as client:
            client.ehlo()
            method = getattr(client, f"auth_{mechanism.lower()}")
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.user, client.password = "alerts", "wrong"
                client.auth(mechanism, method)
            client.user, client.password = "alerts", "s3cret"
            assert client.auth(mechanism, method)[0] == 235
        assert server.auth_failures == 1


def test_plain_mode_offers_no_starttls_and_takes_mail_in_clear() -> None:
    with FakeSmtpServer(SmtpMode.PLAIN, auth=("u", "p")) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.ehlo()
            assert not client.has_extn("starttls")
            client.login("u", "p")  # in clear: that is what this mode is for
            client.send_message(mail("hello"))
        [received] = server.wait_for_messages(1)
    assert not received.tls and received.subject == "hello"


def test_reject_next_refuses_that_many_messages_then_accepts() -> None:
    with FakeSmtpServer(SmtpMode.PLAIN) as server:
        server.reject_next(2, "451 4.3.0 Try again later")
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            for _ in range(2):
                with pytest.raises(smtplib.SMTPDataError) as refused:
                    client.send_message(mail())
                assert refused.value.smtp_code == 451
            client.send_message(mail())
        assert len(server.wait_for_messages(1)) == 1
    assert server.rejected == 2


def test_wait_for_messages_fails_when_nothing_comes(smtp_server: FakeSmtpServer) -> None:
    with pytest.raises(AssertionError, match="0 message"):
        smtp_server.wait_for_messages(1, timeout=0.2)


@needs_openssl
@pytest.mark.parametrize("mode", [SmtpMode.STARTTLS, SmtpMode.SMTPS])
def test_openssl_reads_the_certificate(mode: SmtpMode) -> None:
    with FakeSmtpServer(mode) as server:
        starttls = "smtp" if mode is SmtpMode.STARTTLS else None
        chain = s_client_chain(server.port, starttls=starttls)
    assert chain == list(smtp_certificate().certificates)


@pytest.mark.parametrize("mode", list(SmtpMode))
def test_close_cuts_connected_clients_promptly(mode: SmtpMode) -> None:
    server = FakeSmtpServer(mode).start()
    idle = socket.create_connection((server.host, server.port), timeout=5)
    if mode is SmtpMode.SMTPS:
        client = smtplib.SMTP_SSL(server.host, server.port, context=client_context(), timeout=5)
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=5)
    client.ehlo()
    if mode is SmtpMode.STARTTLS:
        client.starttls(context=client_context())
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 2
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()
    idle.close()
    client.close()
