"""The one source of "now" for the whole service (never the database server's clock).

Tests move time with :func:`use_clock`; production uses the system clock in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return _clock()


@contextmanager
def use_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    """Run a block with another clock; the previous one is restored afterwards."""
    global _clock
    previous = _clock
    _clock = clock
    try:
        yield
    finally:
        _clock = previous
