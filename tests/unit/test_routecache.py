"""The recipient route cache: expiry, size bound, clearing."""

from __future__ import annotations

from courriel.mailstore.records import Resolution
from courriel.mailstore.routecache import RouteCache

KNOWN = Resolution(local=True, account_ids=(1,), forward=(), known=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = RouteCache(ttl=2.0, clock=clock)
    cache.put("a@shop.test", KNOWN)
    clock.now += 1.9
    assert cache.get("a@shop.test") == KNOWN
    clock.now += 0.2
    assert cache.get("a@shop.test") is None


def test_the_oldest_entry_goes_when_full_and_clear_forgets_all() -> None:
    cache = RouteCache(ttl=60, size=2, clock=Clock())
    for name in ("a", "b", "c"):
        cache.put(f"{name}@shop.test", KNOWN)
    assert cache.get("a@shop.test") is None
    assert cache.get("c@shop.test") == KNOWN
    cache.clear()
    assert cache.get("c@shop.test") is None


def test_a_zero_ttl_disables_the_cache() -> None:
    cache = RouteCache(ttl=0)
    cache.put("a@shop.test", KNOWN)
    assert cache.get("a@shop.test") is None
