"""The connection cache: what is parked, what is handed out, what is closed (QUIT)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from courriel.delivery.conncache import ConnectionCache
from courriel.delivery.transport import Outgoing, SendOutcome


@dataclass
class FakeSession:
    host: str = "mx.remote.test"
    tls: bool = False
    tls_verified: bool = False
    open: bool = True
    quits: int = 0

    @property
    def reusable(self) -> bool:
        return self.open

    async def send(self, message: Outgoing) -> SendOutcome:
        raise AssertionError("not sent here")

    async def close(self) -> None:
        self.quits += 1
        self.open = False


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


KEY = ("mx.remote.test", "127.0.0.2", 25)


async def test_a_parked_session_is_handed_back_with_its_count() -> None:
    cache = ConnectionCache(idle_limit=2.0, max_messages=100, clock=Clock())
    session = FakeSession()
    cache.put(*KEY, session, sent=3)
    assert len(cache) == 1
    parked = cache.take(*KEY)
    assert parked is not None and parked.conn is session and parked.sent == 3
    assert cache.take(*KEY) is None  # one lane at a time
    assert cache.take("mx.remote.test", "127.0.0.3", 25) is None  # another address


async def test_expired_spent_or_dead_sessions_are_closed_not_handed_out() -> None:
    clock = Clock()
    cache = ConnectionCache(idle_limit=2.0, max_messages=10, clock=clock)
    spent, dead, old = FakeSession(), FakeSession(), FakeSession()
    cache.put(*KEY, spent, sent=10)  # carried its maximum already
    cache.put(*KEY, old, sent=1)
    clock.now += 2.5  # old's idle time is over
    dead_key = ("mx.remote.test", "127.0.0.9", 25)
    cache.put(*dead_key, dead, sent=1)
    dead.open = False  # the peer closed it (421, then EOF)
    assert cache.take(*KEY) is None
    assert cache.take(*dead_key) is None
    await asyncio.sleep(0)
    assert spent.quits == 1 and old.quits == 1 and dead.quits == 1
    assert len(cache) == 0


async def test_prune_and_close_quit_what_is_parked() -> None:
    clock = Clock()
    cache = ConnectionCache(idle_limit=2.0, clock=clock)
    early, late = FakeSession(), FakeSession()
    cache.put(*KEY, early, sent=1)
    clock.now += 1.5
    cache.put("mx.other.test", "127.0.0.3", 25, late, sent=1)
    clock.now += 1.0  # early: 2.5 s idle; late: 1.0 s
    cache.prune()
    await asyncio.sleep(0)
    assert (early.quits, late.quits) == (1, 0) and len(cache) == 1
    await cache.close()
    assert late.quits == 1 and len(cache) == 0
