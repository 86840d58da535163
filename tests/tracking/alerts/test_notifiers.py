"""The notifiers against real local servers: signed webhooks, SMTP (plain, STARTTLS, implicit
TLS) with aiosmtpd, Apprise's json:// - and the private-address guard on every user target."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook

from tests.fakes import pki
from tests.tracking.alerts.support import http_receiver
from tracking.core.alert_rules import ChannelKind
from tracking.core.errors import ErrorCode
from tracking.core.notices import Notice, NoticeDevice, TrialNotice
from tracking.core.notify_settings import NotifySettings
from tracking.core.settings import Settings
from tracking.probes.notify import ChannelTarget, NotifyError, RealNotifier, new_secret
from tracking.probes.notify.apprise_send import (
    ALLOWED_SCHEMES,
    check_apprise_url,
    known_schemes,
    send_apprise,
)
from tracking.probes.resolver import resolver_for

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NOTICE = Notice(
    alert_id=7,
    kind="EXPIRING",
    severity="WARNING",
    message="Certificate shop expires in 14 days (2026-05-15)",
    threshold_days=14,
    created_at=AT,
    device=NoticeDevice(
        id=3,
        name="shop",
        category="SSL_CERTIFICATE",
        organization_id=1,
        organization_name="Acme",
        host="shop.example.com",
        port=443,
        domain=None,
        expires_at=datetime(2026, 5, 15, 12, 0, tzinfo=UTC),
    ),
)


def _notifier(tmp_path: Path, *, allow_private: bool = True, **notify: Any) -> RealNotifier:
    settings = Settings(data_dir=tmp_path, allow_private_targets=allow_private, probe_timeout_s=3)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(pki.test_ca().root.pem)
    settings = replace(settings, ca_bundle=ca_file)
    return RealNotifier(settings, NotifySettings(timeout_s=5, **notify), resolver_for(settings))


# --- webhooks ------------------------------------------------------------------------------


def test_a_webhook_is_signed_per_standard_webhooks_with_the_documented_body(
    tmp_path: Path,
) -> None:
    secret = new_secret()
    with http_receiver() as receiver:
        channel = ChannelTarget(ChannelKind.WEBHOOK, "hook", receiver.url + "/in", secret)
        asyncio.run(_notifier(tmp_path).send(channel, NOTICE, "msg_abc", AT))
    (request,) = receiver.requests
    assert request.headers["webhook-id"] == "msg_abc"
    assert request.headers["webhook-timestamp"] == str(int(AT.timestamp()))
    assert request.headers["webhook-signature"].startswith("v1,")
    signed = Webhook(secret).sign("msg_abc", AT, request.body)
    assert request.headers["webhook-signature"] == signed
    body = json.loads(request.body)
    assert body == {
        "type": "alert.raised",
        "alert": {
            "id": "QWxlcnQ6Nw==",
            "kind": "EXPIRING",
            "severity": "WARNING",
            "message": "Certificate shop expires in 14 days (2026-05-15)",
            "thresholdDays": 14,
            "createdAt": "2026-05-01T12:00:00+00:00",
        },
        "device": {
            "id": "RGV2aWNlOjM=",
            "name": "shop",
            "category": "SSL_CERTIFICATE",
            "organization": {"id": "T3JnYW5pemF0aW9uOjE=", "name": "Acme"},
            "host": "shop.example.com",
            "port": 443,
            "domain": None,
            "validUntil": "2026-05-15T12:00:00+00:00",
            "expiresAt": None,
        },
    }


def test_a_webhook_answer_other_than_2xx_is_not_a_delivery(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        receiver.status = 500
        channel = ChannelTarget(ChannelKind.WEBHOOK, "hook", receiver.url, new_secret())
        with pytest.raises(NotifyError, match="the webhook answered HTTP 500"):
            asyncio.run(_notifier(tmp_path).send(channel, NOTICE, "msg_x", AT))


def test_a_webhook_to_a_private_address_is_refused_without_a_connection(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        channel = ChannelTarget(ChannelKind.WEBHOOK, "hook", receiver.url, new_secret())
        with pytest.raises(NotifyError) as refused:
            asyncio.run(_notifier(tmp_path, allow_private=False).send(channel, NOTICE, "m", AT))
    assert refused.value.code is ErrorCode.PRIVATE_ADDRESS_REFUSED
    assert receiver.requests == []


# --- SMTP --------------------------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _server_context(tmp_path: Path) -> ssl.SSLContext:
    ca = pki.test_ca()
    leaf = ca.leaf("localhost", dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    cert, key = tmp_path / "smtp.pem", tmp_path / "smtp.key"
    cert.write_text(leaf.pem + ca.intermediate.pem)
    key.write_bytes(leaf.key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture(params=["plain", "starttls", "smtps"])
def smtp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, _Inbox, Any]]:
    inbox = _Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd checks its server by connecting)
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": free}
    if request.param == "starttls":
        kwargs["tls_context"] = _server_context(tmp_path)
    if request.param == "smtps":
        kwargs["ssl_context"] = _server_context(tmp_path)
    controller = Controller(inbox, **kwargs)
    controller.start()
    try:
        port = free
        scheme = "smtps" if request.param == "smtps" else "smtp"
        yield f"{scheme}://localhost:{port}", inbox, controller
    finally:
        controller.stop()


def test_email_goes_through_the_smtp_server(tmp_path: Path, smtp: tuple[str, _Inbox, Any]) -> None:
    url, inbox, _ = smtp
    notifier = _notifier(tmp_path, smtp_url=url, mail_from="alerts@dstrack.example")
    channel = ChannelTarget(ChannelKind.EMAIL, "ops", "ops@example.com,cto@example.com")
    asyncio.run(notifier.send(channel, NOTICE, "msg_mail", AT))
    ((sender, recipients, content),) = inbox.messages
    assert (sender, recipients) == (
        "alerts@dstrack.example",
        ["ops@example.com", "cto@example.com"],
    )
    message = message_from_bytes(content)
    assert message["Subject"] == "[dstrack] Certificate shop expires in 14 days (2026-05-15)"
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    for line in (
        "Device: shop (SSL certificate)",
        "Organization: Acme",
        "Host: shop.example.com:443",
        "Expires: 2026-05-15 12:00 UTC",
        "Days left: 14",
        "Open in dstrack: http://127.0.0.1:8000/?device=RGV2aWNlOjM=",
    ):
        assert line in body


def test_email_without_smtp_configured_says_so(tmp_path: Path) -> None:
    channel = ChannelTarget(ChannelKind.EMAIL, "ops", "ops@example.com")
    with pytest.raises(NotifyError, match="set DSTRACK_SMTP_URL"):
        asyncio.run(_notifier(tmp_path).send(channel, TrialNotice("ops", AT), "m", AT))


def test_a_refusing_smtp_server_is_a_failure_without_the_password(tmp_path: Path) -> None:
    notifier = _notifier(tmp_path, smtp_url="smtp://user:hunter2@127.0.0.1:1")
    channel = ChannelTarget(ChannelKind.EMAIL, "ops", "ops@example.com")
    with pytest.raises(NotifyError) as failed:
        asyncio.run(notifier.send(channel, NOTICE, "m", AT))
    assert "127.0.0.1:1" in failed.value.message and "hunter2" not in failed.value.message


# --- Apprise -----------------------------------------------------------------------------------


def test_apprise_json_reaches_a_local_receiver(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        url = receiver.url.replace("http://", "json://") + "/notify"
        channel = ChannelTarget(ChannelKind.APPRISE, "chat", url)
        asyncio.run(_notifier(tmp_path).send(channel, NOTICE, "m", AT))
    (request,) = receiver.requests
    body = json.loads(request.body)
    assert body["title"] == "[dstrack] Certificate shop expires in 14 days (2026-05-15)"
    assert body["message"].startswith("Certificate shop expires in 14 days (2026-05-15)\n")


def test_apprise_to_a_private_address_is_refused(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        url = receiver.url.replace("http://", "json://")
        channel = ChannelTarget(ChannelKind.APPRISE, "chat", url)
        with pytest.raises(NotifyError) as refused:
            asyncio.run(_notifier(tmp_path, allow_private=False).send(channel, NOTICE, "m", AT))
    assert refused.value.code is ErrorCode.PRIVATE_ADDRESS_REFUSED
    assert receiver.requests == []


def test_apprise_connections_are_guarded_inside_apprise_too(tmp_path: Path) -> None:
    """Past the URL check (a vendor host, a redirect...), each connection Apprise makes is
    judged by the guard: here a json:// URL handed straight to the sending thread."""
    from tracking.probes.notify import apprise_send

    settings = Settings(data_dir=tmp_path, allow_private_targets=False, probe_timeout_s=3)
    with http_receiver() as receiver:
        url = receiver.url.replace("http://", "json://")
        apprise_send._install()

        def resolve(host: str) -> list[str]:
            return asyncio.run(apprise_send.checked_addresses(host, resolver_for(settings), False))

        guard = apprise_send._ThreadGuard(resolve)
        ok, _ = apprise_send._notify_guarded(url, "t", "b", guard)
    assert not ok and guard.refusal is not None and "refused to connect" in guard.refusal
    assert receiver.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "mailto://user:pass@mail.example.com",
        "syslog://",
        "windows://",
        "dbus://",
        "file:///etc/passwd",
        "json:/no-host",
    ],
)
def test_apprise_schemes_that_are_not_http_are_refused(url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, allow_private_targets=True)
    with pytest.raises(NotifyError):
        asyncio.run(
            send_apprise(
                url,
                title="t",
                body="b",
                settings=settings,
                resolver=resolver_for(settings),
                timeout_s=2,
            )
        )


def test_every_allowed_apprise_scheme_is_one_apprise_knows() -> None:
    assert known_schemes() >= ALLOWED_SCHEMES, ALLOWED_SCHEMES - known_schemes()


def test_an_apprise_url_apprise_cannot_read_is_refused() -> None:
    from tracking.core.errors import ValidationError

    with pytest.raises(ValidationError, match="Apprise cannot read"):
        check_apprise_url("tgram://")
