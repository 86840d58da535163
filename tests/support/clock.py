"""A clock tests move by hand; install it with ``tracking.core.clock.use_clock``."""

from __future__ import annotations

from datetime import datetime, timedelta


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now
