"""The shared parsed-message LRU: byte budget, eviction order, no caching of failures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from courriel.errors import NotFound
from courriel.protocols.imap.cache import MessageCache


def loader(data: bytes, calls: list[int]) -> Callable[[], Awaitable[bytes]]:
    async def load() -> bytes:
        calls.append(1)
        return data

    return load


async def test_hits_and_least_recently_used_eviction() -> None:
    cache = MessageCache(max_bytes=25)
    calls: list[int] = []
    a = await cache.get(1, "ka", loader(b"a" * 10, calls))
    assert await cache.get(1, "ka", loader(b"x", calls)) is a
    await cache.get(2, "kb", loader(b"b" * 10, calls))
    await cache.get(1, "ka", loader(b"x", calls))  # a is now the most recent
    await cache.get(3, "kc", loader(b"c" * 10, calls))  # evicts b
    assert len(cache) == 2 and cache.used == 20
    assert cache.hits == 2 and len(calls) == 3
    await cache.get(1, "ka", loader(b"x", calls))
    assert len(calls) == 3
    await cache.get(2, "kb", loader(b"b" * 10, calls))
    assert len(calls) == 4


async def test_a_message_over_budget_is_returned_not_kept() -> None:
    cache = MessageCache(max_bytes=5)
    parsed = await cache.get(1, "k", loader(b"Subject: big\r\n\r\nbody\r\n", []))
    assert parsed.size == 22
    assert len(cache) == 0 and cache.used == 0


async def test_a_failed_load_is_not_cached() -> None:
    cache = MessageCache()

    async def gone() -> bytes:
        raise NotFound("message 1")

    with pytest.raises(NotFound):
        await cache.get(1, "k", gone)
    assert len(cache) == 0
