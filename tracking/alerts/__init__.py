"""Alerts: the expiry sweep, change alerts from the update pipeline, and the outbox with its
delivery. Adapters (the API, Dagster, the CLI) use the names below."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from tracking.alerts.alerting import Alerting
from tracking.alerts.book import Book, load_book, organization_scope
from tracking.alerts.delivery import DeliveryOutcome, DeliveryReport, deliver_pending
from tracking.alerts.outbox import next_due, pending_count, pending_key
from tracking.alerts.raising import NewAlert, raise_alerts
from tracking.alerts.subscriber import ChangeAlerts
from tracking.alerts.sweep import SweepReport, sweep
from tracking.core import clock
from tracking.refresh.services import Services


def alerting_of(services: Services) -> Alerting:
    """The alerting the services were built with (``tracking.wiring``), else one from the
    environment."""
    for subscriber in services.subscribers:
        if isinstance(subscriber, ChangeAlerts) and subscriber.alerting is not None:
            return subscriber.alerting
    return Alerting.real(services.settings, services.resolver)


@dataclass(frozen=True)
class RunReport:
    swept: SweepReport
    delivered: DeliveryReport

    @property
    def summary(self) -> str:
        return (
            f"raised {self.swept.raised}, sent {self.delivered.sent}, "
            f"failed {self.delivered.failed}"
        )


async def run_once(engine: Engine, alerting: Alerting) -> RunReport:
    """One sweep, then one delivery pass (``dstrack alerts run``)."""
    swept = sweep(engine, now=clock.now())
    delivered = await deliver_pending(engine, alerting.notifier, alerting.settings)
    return RunReport(swept, delivered)


__all__ = [
    "Alerting",
    "Book",
    "ChangeAlerts",
    "DeliveryOutcome",
    "DeliveryReport",
    "NewAlert",
    "RunReport",
    "SweepReport",
    "alerting_of",
    "deliver_pending",
    "load_book",
    "next_due",
    "organization_scope",
    "pending_count",
    "pending_key",
    "raise_alerts",
    "run_once",
    "sweep",
]
