"""How alerts are sent: the notify settings and the notifier (tests hand in fakes)."""

from __future__ import annotations

from dataclasses import dataclass

from tracking.core.notify_settings import NotifySettings
from tracking.core.settings import Settings
from tracking.probes.notify import Notifier, RealNotifier
from tracking.probes.resolver import Resolver, resolver_for


@dataclass(frozen=True)
class Alerting:
    settings: NotifySettings
    notifier: Notifier

    @classmethod
    def real(
        cls,
        settings: Settings,
        resolver: Resolver | None = None,
        notify: NotifySettings | None = None,
    ) -> Alerting:
        """E-mail, webhooks and Apprise for real; ``notify`` None: from the environment."""
        notify = notify or NotifySettings.from_env()
        return cls(notify, RealNotifier(settings, notify, resolver or resolver_for(settings)))
