"""How long OCSP answers, CRLs and issuer certificates are kept, and the bounded cache that keeps
them (pure: no clock of its own, no I/O; ``tracking.probes.revocation`` owns one per process).

An entry lives until its answer's nextUpdate and never longer than ``max_age`` (a CA publishes
news before the nextUpdate it promised); a failure is remembered for ``failure_ttl``, so a
responder that does not answer is not asked again by every device of its issuer. The cache
holds at most ``max_entries`` entries and ``max_bytes`` bytes, dropping expired entries first,
then the least recently used.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

V = TypeVar("V")

MiB = 1024 * 1024


@dataclass(frozen=True)
class CachePolicy:
    max_entries: int = 10_000
    max_bytes: int = 128 * MiB
    max_age: timedelta = timedelta(hours=6)
    failure_ttl: timedelta = timedelta(minutes=5)

    def expires_at(self, now: datetime, next_update: datetime | None) -> datetime:
        """Until ``next_update``, at most ``max_age`` from now."""
        cap = now + self.max_age
        return cap if next_update is None else min(next_update, cap)

    def failure_expires_at(self, now: datetime) -> datetime:
        return now + self.failure_ttl


@dataclass
class _Entry(Generic[V]):
    value: V
    size: int
    expires_at: datetime


class ExpiringCache(Generic[V]):
    """A least-recently-used map whose entries expire and whose total size is bounded.
    Not thread-safe by itself: its owner serializes calls."""

    def __init__(self, policy: CachePolicy) -> None:
        self.policy = policy
        self._entries: OrderedDict[str, _Entry[V]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, now: datetime) -> V | None:
        """The value under ``key`` if it has not expired (and it becomes the most recent)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(self, key: str, value: V, *, size: int, expires_at: datetime, now: datetime) -> bool:
        """Keep ``value`` until ``expires_at``; False (not kept) when it has already expired
        or alone exceeds the byte bound."""
        if key in self._entries:
            self._drop(key)
        if expires_at <= now or size > self.policy.max_bytes:
            return False
        self._entries[key] = _Entry(value, size, expires_at)
        self.bytes += size
        if len(self._entries) > self.policy.max_entries or self.bytes > self.policy.max_bytes:
            self._shrink(now)
        return True

    def _shrink(self, now: datetime) -> None:
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            self._drop(key)
        while len(self._entries) > self.policy.max_entries or self.bytes > self.policy.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self.bytes -= entry.size
