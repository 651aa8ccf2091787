"""The DKIM signer cache: one load per domain and TTL, however many senders miss at once."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from courriel.delivery import signing
from courriel.delivery.dkimkeys import DkimSigner
from courriel.delivery.signing import SignerCache
from courriel.errors import NotFound
from courriel.storage.db import Database

# The loads are faked: the cache only passes the database on to load_signer.
NO_DATABASE = cast(Database, object())
SIGNER = cast(DkimSigner, object())


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeLoads:
    """Stands in for load_signer: counts the loads, each waits for ``gate`` then answers."""

    def __init__(self, outcome: DkimSigner | Exception | None = SIGNER) -> None:
        self.outcome = outcome
        self.domains: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, db: Database, domain: str) -> DkimSigner | None:
        self.domains.append(domain)
        await self.gate.wait()
        await asyncio.sleep(0)  # a real suspension, like the database read
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> FakeLoads:
    fake = FakeLoads()
    monkeypatch.setattr(signing, "load_signer", fake)
    return fake


async def test_concurrent_misses_on_a_cold_cache_share_one_load(loads: FakeLoads) -> None:
    cache = SignerCache(NO_DATABASE)
    found = await asyncio.gather(*(cache.signer("shop.test") for _ in range(64)))
    assert loads.domains == ["shop.test"]
    assert all(signer is SIGNER for signer in found)
    assert await cache.signer("shop.test") is SIGNER
    assert loads.domains == ["shop.test"]


async def test_each_domain_has_its_own_load(loads: FakeLoads) -> None:
    cache = SignerCache(NO_DATABASE)
    names = ["a.test", "b.test"] * 20
    await asyncio.gather(*(cache.signer(name) for name in names))
    assert sorted(loads.domains) == ["a.test", "b.test"]


async def test_after_the_ttl_concurrent_misses_share_one_reload(loads: FakeLoads) -> None:
    clock = Clock()
    cache = SignerCache(NO_DATABASE, ttl=60.0, clock=clock)
    await cache.signer("shop.test")
    clock.now += 59.9
    await asyncio.gather(*(cache.signer("shop.test") for _ in range(16)))
    assert len(loads.domains) == 1
    clock.now += 0.1
    await asyncio.gather(*(cache.signer("shop.test") for _ in range(16)))
    assert len(loads.domains) == 2


async def test_a_courriel_error_is_none_for_every_waiter_and_cached(loads: FakeLoads) -> None:
    loads.outcome = NotFound("no such domain")
    clock = Clock()
    cache = SignerCache(NO_DATABASE, ttl=60.0, clock=clock)
    found = await asyncio.gather(*(cache.signer("remote.example") for _ in range(16)))
    assert found == [None] * 16
    assert await cache.signer("remote.example") is None
    assert len(loads.domains) == 1
    clock.now += 60.0
    assert await cache.signer("remote.example") is None
    assert len(loads.domains) == 2


async def test_another_failure_reaches_every_waiter_and_the_next_call_retries(
    loads: FakeLoads,
) -> None:
    failure = RuntimeError("connection reset")
    loads.outcome = failure
    cache = SignerCache(NO_DATABASE)
    found = await asyncio.gather(
        *(cache.signer("shop.test") for _ in range(16)), return_exceptions=True
    )
    assert found == [failure] * 16
    assert len(loads.domains) == 1
    loads.outcome = SIGNER
    assert await cache.signer("shop.test") is SIGNER
    assert len(loads.domains) == 2


async def test_a_cancelled_caller_does_not_cancel_the_load_of_the_others(
    loads: FakeLoads,
) -> None:
    loads.gate.clear()
    cache = SignerCache(NO_DATABASE)
    first = asyncio.create_task(cache.signer("shop.test"))
    second = asyncio.create_task(cache.signer("shop.test"))
    while not loads.domains:  # the load has started, both callers are waiting on it
        await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    loads.gate.set()
    assert await second is SIGNER
    assert await cache.signer("shop.test") is SIGNER
    assert len(loads.domains) == 1
