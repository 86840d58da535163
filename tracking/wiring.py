"""Builds the real services: probes, database, RAW store, and every subscriber of the update
pipeline. The one place that knows all of ``tracking``'s parts; the adapters start here."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from tracking.alerts import Alerting, ChangeAlerts
from tracking.core.notify_settings import NotifySettings
from tracking.core.settings import Settings
from tracking.metrics import UpdateMetrics
from tracking.probes.resolver import resolver_for
from tracking.probes.revocation import RevocationChecker
from tracking.probes.tls import RealTlsProbe
from tracking.refresh.rawstore import RawStore
from tracking.refresh.services import RealDnsProbe, RealRegistrationProbe, Services


def build_services(
    settings: Settings, engine: Engine, *, notify: NotifySettings | None = None
) -> Services:
    """``notify`` None: the ``DSTRACK_SMTP_URL``... environment variables."""
    resolver = resolver_for(settings)
    alerting = Alerting.real(settings, resolver, notify)
    return Services(
        settings=settings,
        engine=engine,
        tls=RealTlsProbe(settings, resolver),
        registration=RealRegistrationProbe(settings),
        dns=RealDnsProbe(settings),
        resolver=resolver,
        raw_store=RawStore(settings.data_dir),
        subscribers=(ChangeAlerts(alerting), UpdateMetrics()),
        revocation=RevocationChecker(settings, resolver),
    )
