"""The cache of OCSP answers and CRLs: until nextUpdate, never past ``max_age``, bounded in
entries and bytes, expired entries dropped first, then the least recently used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tracking.core.revocation_cache import CachePolicy, ExpiringCache

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_an_entry_lives_until_its_next_update_at_most_max_age() -> None:
    policy = CachePolicy(max_age=timedelta(hours=6))
    assert policy.expires_at(NOW, NOW + 2 * HOUR) == NOW + 2 * HOUR
    assert policy.expires_at(NOW, NOW + timedelta(days=7)) == NOW + 6 * HOUR
    assert policy.expires_at(NOW, None) == NOW + 6 * HOUR
    assert CachePolicy(failure_ttl=timedelta(minutes=5)).failure_expires_at(NOW) == NOW + (
        timedelta(minutes=5)
    )


def test_an_entry_is_gone_at_its_expiry() -> None:
    cache: ExpiringCache[str] = ExpiringCache(CachePolicy())
    assert cache.put("crl a", "A", size=10, expires_at=NOW + HOUR, now=NOW)
    assert cache.get("crl a", NOW + HOUR - timedelta(seconds=1)) == "A"
    assert cache.get("crl a", NOW + HOUR) is None
    assert len(cache) == 0 and cache.bytes == 0


def test_what_has_expired_or_is_too_large_is_not_kept() -> None:
    cache: ExpiringCache[str] = ExpiringCache(CachePolicy(max_bytes=100))
    assert not cache.put("stale", "S", size=1, expires_at=NOW, now=NOW)
    assert not cache.put("huge", "H", size=101, expires_at=NOW + HOUR, now=NOW)
    assert len(cache) == 0


def test_the_least_recently_used_goes_first_when_entries_are_bounded() -> None:
    cache: ExpiringCache[str] = ExpiringCache(CachePolicy(max_entries=2))
    cache.put("a", "A", size=1, expires_at=NOW + HOUR, now=NOW)
    cache.put("b", "B", size=1, expires_at=NOW + HOUR, now=NOW)
    assert cache.get("a", NOW) == "A"  # a is now the most recent
    cache.put("c", "C", size=1, expires_at=NOW + HOUR, now=NOW)
    assert [cache.get(k, NOW) for k in "abc"] == ["A", None, "C"]


def test_expired_entries_go_before_recent_ones_when_bytes_are_bounded() -> None:
    cache: ExpiringCache[str] = ExpiringCache(CachePolicy(max_bytes=100))
    cache.put("old", "O", size=40, expires_at=NOW + HOUR, now=NOW)
    cache.put("soon", "S", size=40, expires_at=NOW + timedelta(minutes=1), now=NOW)
    later = NOW + timedelta(minutes=2)
    assert cache.put("new", "N", size=40, expires_at=later + HOUR, now=later)
    assert cache.bytes == 80
    assert [cache.get(k, later) for k in ("old", "soon", "new")] == ["O", None, "N"]
    cache.put("big", "B", size=70, expires_at=later + HOUR, now=later)
    assert cache.bytes <= 100
    assert cache.get("big", later) == "B"


def test_putting_a_key_again_replaces_it() -> None:
    cache: ExpiringCache[str] = ExpiringCache(CachePolicy())
    cache.put("k", "one", size=30, expires_at=NOW + HOUR, now=NOW)
    cache.put("k", "two", size=20, expires_at=NOW + HOUR, now=NOW)
    assert cache.get("k", NOW) == "two"
    assert (len(cache), cache.bytes) == (1, 20)
