"""A sliding-window limit per key (e.g. forced updates per user), in process memory.

Each API worker keeps its own window, so with N workers a user gets at most N times the
limit; that bounds the load one user can cause, which is what the limit is for.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from tracking.core import clock
from tracking.core.errors import ErrorCode, ValidationError


class SlidingWindowLimit:
    def __init__(self, *, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[object, deque[datetime]] = {}
        self._lock = threading.Lock()

    def take(self, key: object, cost: int = 1, *, what: str = "requests") -> None:
        """Count ``cost`` events for ``key`` now, or refuse with RATE_LIMITED (counting none)."""
        now = clock.now()
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) + cost > self.limit:
                retry = int((events[0] + self.window - now).total_seconds()) + 1 if events else 1
                raise ValidationError(
                    ErrorCode.RATE_LIMITED,
                    f"Too many {what}: at most {self.limit} per "
                    f"{int(self.window.total_seconds() // 60)} minutes. "
                    f"Try again in {retry} seconds.",
                )
            events.extend([now] * cost)
