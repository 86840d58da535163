"""Sends one notice to one channel, whatever its kind (e-mail, webhook, Apprise)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from ssl import SSLContext
from typing import Protocol

from tracking.core.alert_rules import ChannelKind
from tracking.core.notices import Notice, TrialNotice, encode_document
from tracking.core.notify_settings import NotifySettings
from tracking.core.settings import Settings
from tracking.probes.notify.apprise_send import send_apprise
from tracking.probes.notify.errors import NotifyError
from tracking.probes.notify.smtp import SmtpServer, send_email, tls_context
from tracking.probes.notify.webhook import send_webhook
from tracking.probes.resolver import Resolver


@dataclass(frozen=True)
class ChannelTarget:
    """A channel as a notifier needs it (secrets included)."""

    kind: str
    name: str
    target: str  # comma-separated recipients, or the URL
    secret: str | None = None


class Notifier(Protocol):
    async def send(
        self, channel: ChannelTarget, notice: Notice | TrialNotice, message_id: str, at: datetime
    ) -> None:
        """Deliver or raise :class:`NotifyError`."""
        ...


@dataclass
class RealNotifier:
    settings: Settings
    notify: NotifySettings
    resolver: Resolver

    @cached_property
    def _tls(self) -> SSLContext:
        return tls_context(self.settings.ca_bundle)

    async def send(
        self, channel: ChannelTarget, notice: Notice | TrialNotice, message_id: str, at: datetime
    ) -> None:
        timeout_s = self.notify.timeout_s
        if channel.kind == ChannelKind.EMAIL:
            server = SmtpServer.from_url(self.notify.smtp_url) if self.notify.smtp_url else None
            await send_email(
                server,
                sender=self.notify.mail_from,
                to=channel.target.split(","),
                subject=notice.subject,
                text=notice.text(self.notify.public_url),
                timeout_s=timeout_s,
                context=self._tls,
                message_id=message_id,
            )
        elif channel.kind == ChannelKind.WEBHOOK:
            if not channel.secret:
                raise NotifyError("the webhook channel has no signing secret")
            await send_webhook(
                channel.target,
                channel.secret,
                message_id,
                encode_document(notice.webhook_document()),
                at=at,
                settings=self.settings,
                resolver=self.resolver,
                timeout_s=timeout_s,
            )
        elif channel.kind == ChannelKind.APPRISE:
            await send_apprise(
                channel.target,
                title=notice.subject,
                body=notice.text(self.notify.public_url),
                settings=self.settings,
                resolver=self.resolver,
                timeout_s=timeout_s,
            )
        else:
            raise NotifyError(f"unknown channel kind {channel.kind}")
