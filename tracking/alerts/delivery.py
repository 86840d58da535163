"""Delivering the outbox: at least once, each channel on its own, never twice once SENT.

A pass runs ``concurrency`` workers. Each claims one due delivery at a time for a lease (never
one of a channel it or another worker of the pass is sending to, nor of a channel that failed
earlier in the pass), sends it within the per-delivery timeout, and records the outcome in its
own small transaction: SENT (with an Activity note), or the next attempt after an exponential
backoff, or FAILED once 24 hours of retries are over. So a slow or failing channel holds one
worker and nothing else, and a worker killed mid-send loses nothing: its claim runs out and the
delivery is sent again, with the same idempotency key (``webhook-id``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from tracking.alerts import outbox
from tracking.core import clock
from tracking.core.alert_rules import DeliveryState
from tracking.core.notify_settings import NotifySettings
from tracking.probes.notify import Notifier, NotifyError

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: int
    alert_id: int
    device_id: int
    channel: str
    state: DeliveryState
    message: str
    error: str | None = None


@dataclass
class DeliveryReport:
    outcomes: list[DeliveryOutcome] = field(default_factory=list)

    def count(self, state: DeliveryState) -> int:
        return sum(1 for o in self.outcomes if o.state is state)

    @property
    def sent(self) -> int:
        return self.count(DeliveryState.SENT)

    @property
    def failed(self) -> int:
        return self.count(DeliveryState.FAILED)

    @property
    def retrying(self) -> int:
        return self.count(DeliveryState.PENDING)


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{id(object()) % 100000}"


@dataclass
class _Pass:
    engine: Engine
    notifier: Notifier
    settings: NotifySettings
    now: Callable[[], datetime]
    worker: str
    report: DeliveryReport = field(default_factory=DeliveryReport)
    busy: set[int] = field(default_factory=set)  # channels being sent to, or failed this pass

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_s)

    async def work(self) -> None:
        while True:
            delivery_id = outbox.claim_one(
                self.engine,
                worker=self.worker,
                now=self.now(),
                lease=self.lease,
                skip_channels=self.busy,
            )
            if delivery_id is None:
                return
            claimed = outbox.load_claimed(self.engine, delivery_id)
            if claimed is None:
                continue
            self.busy.add(claimed.channel_id)
            failed = await self.deliver(claimed)
            if not failed:
                self.busy.discard(claimed.channel_id)

    async def deliver(self, claimed: outbox.Claimed) -> bool:
        """Send one claimed delivery and record it; True when it failed."""
        error: str | None = claimed.channel_usable
        if error is None:
            try:
                async with asyncio.timeout(self.settings.timeout_s):
                    await self.notifier.send(
                        claimed.channel, claimed.notice, claimed.key, self.now()
                    )
            except NotifyError as exc:
                error = exc.message
            except TimeoutError:
                error = f"no answer within {self.settings.timeout_s:g} s"
            except Exception as exc:  # a notifier bug must not stop the other deliveries
                log.exception("delivery %s failed unexpectedly", claimed.id)
                error = f"unexpected error ({type(exc).__name__})"
        now = self.now()
        if error is None:
            state: DeliveryState | None = DeliveryState.SENT
            if not outbox.record_sent(self.engine, claimed, worker=self.worker, now=now):
                state = None
        else:
            final = claimed.channel_usable is not None
            state = outbox.record_failure(
                self.engine, claimed, error, worker=self.worker, now=now, final=final
            )
        if state is not None:
            self.report.outcomes.append(
                DeliveryOutcome(
                    claimed.id,
                    claimed.notice.alert_id,
                    claimed.notice.device.id,
                    claimed.channel.name,
                    state,
                    claimed.notice.message,
                    error,
                )
            )
        return error is not None


async def deliver_pending(
    engine: Engine,
    notifier: Notifier,
    settings: NotifySettings,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    now: Callable[[], datetime] = clock.now,
    worker: str | None = None,
) -> DeliveryReport:
    """One delivery pass: every delivery due now, then return what happened."""
    run = _Pass(engine, notifier, settings, now, worker or worker_name())
    await asyncio.gather(*(run.work() for _ in range(max(1, concurrency))))
    return run.report
