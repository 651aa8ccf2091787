"""Concurrent relaying misses in one remote domain share one read; local answers stay per address.

A campaign's sending tasks all miss a cold route cache at once: without sharing, each
ran its own read of the domains table for the same remote domain.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from courriel.errors import AddressError, StorageError
from courriel.mailstore import aliases
from courriel.mailstore.records import Resolution
from courriel.mailstore.service import MailStore


class Reads:
    """Counts the calls of ``aliases.resolve`` per domain and the SELECTs sent to the engine."""

    def __init__(self) -> None:
        self.per_domain: Counter[str] = Counter()
        self.selects = 0
        self.failure: Exception | None = None  # raised by the next read instead, once

    def statement(self, *args: Any) -> None:
        statement: str = args[2]
        if statement.lstrip().upper().startswith("SELECT"):
            self.selects += 1


@pytest.fixture
def reads(mailstore: MailStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reads]:
    counts = Reads()
    real = aliases.resolve

    async def counting(db: Any, address: str) -> Resolution:
        counts.per_domain[address.rpartition("@")[2]] += 1
        await asyncio.sleep(0)  # let the other misses arrive before the read, as in a campaign
        failure, counts.failure = counts.failure, None
        if failure is not None:
            raise failure
        return await real(db, address)

    monkeypatch.setattr(aliases, "resolve", counting)
    engine = mailstore.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counts.statement)
    yield counts
    event.remove(engine, "before_cursor_execute", counts.statement)


async def _resolve_all(mailstore: MailStore, addresses: list[str], **kw: bool) -> list[Any]:
    calls = (mailstore.resolve(a, **kw) for a in addresses)
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_fifty_relaying_misses_at_one_remote_domain_make_one_query(
    mailstore: MailStore, reads: Reads
) -> None:
    addresses = [f"user{i}@remote.example" for i in range(50)]
    found = await _resolve_all(mailstore, addresses, relaying=True)
    assert all(isinstance(r, Resolution) and not r.local and not r.known for r in found)
    assert reads.per_domain == {"remote.example": 1}
    assert reads.selects == 1
    # Later copies are answered by the cache.
    await _resolve_all(mailstore, [f"more{i}@remote.example" for i in range(10)], relaying=True)
    assert reads.selects == 1


async def test_mixed_local_and_remote_misses_get_their_own_answers(
    mailstore: MailStore, reads: Reads
) -> None:
    await mailstore.add_domain("shop.test")
    ids = {}
    for name in ("ann", "bob", "cyd"):
        ids[name] = (await mailstore.add_account(f"{name}@shop.test", "secret-pass")).id
    await mailstore.add_alias("team@shop.test", ["ann@shop.test", "far@remote.example"])
    local = ["ann@shop.test", "bob@shop.test", "cyd@shop.test", "team@shop.test"]
    unknown = ["nobody@shop.test", "ghost@shop.test"]
    remote = [f"u{i}@{d}" for i in range(20) for d in ("one.example", "two.example")]
    found = dict(
        zip(
            local + unknown + remote,
            await _resolve_all(mailstore, local + unknown + remote, relaying=True),
            strict=True,
        )
    )
    for name in ("ann", "bob", "cyd"):
        assert found[f"{name}@shop.test"] == Resolution(
            local=True, account_ids=(ids[name],), forward=(), known=True
        )
    assert found["team@shop.test"] == Resolution(
        local=True, account_ids=(ids["ann"],), forward=("far@remote.example",), known=True
    )
    for address in unknown:
        assert found[address] == Resolution(local=True, account_ids=(), forward=(), known=False)
    assert all(not found[a].local for a in remote)
    # One read per remote domain; every local address had its own.
    assert reads.per_domain == {"shop.test": 6, "one.example": 1, "two.example": 1}


async def test_unknown_local_addresses_are_still_never_cached(
    mailstore: MailStore, reads: Reads
) -> None:
    await mailstore.add_domain("shop.test")
    addresses = [f"new{i}@shop.test" for i in range(5)]
    found = await _resolve_all(mailstore, addresses, relaying=True)
    assert all(r.local and not r.known for r in found)
    # Made by another process: this one's cache is not cleared, yet the account is seen.
    await aliases.add_alias(mailstore.db, "new0@shop.test", ["far@remote.example"])
    again = await mailstore.resolve("new0@shop.test", relaying=True)
    assert again.known and again.forward == ("far@remote.example",)


async def test_the_mx_listener_shares_no_read_in_flight(mailstore: MailStore, reads: Reads) -> None:
    addresses = [f"user{i}@remote.example" for i in range(10)]
    found = await _resolve_all(mailstore, addresses)
    assert all(not r.local for r in found)
    assert reads.per_domain == {"remote.example": 10}


async def test_an_unparsable_first_address_fails_alone(mailstore: MailStore, reads: Reads) -> None:
    addresses = ["a..b@remote.example"] + [f"user{i}@remote.example" for i in range(10)]
    found = await _resolve_all(mailstore, addresses, relaying=True)
    assert isinstance(found[0], AddressError)
    assert all(isinstance(r, Resolution) and not r.local for r in found[1:])
    # The failed probe answered no one; the first of the others read for them all.
    assert reads.per_domain == {"remote.example": 2}
    assert reads.selects == 1


async def test_a_failed_shared_read_reaches_every_waiter_and_the_next_call_retries(
    mailstore: MailStore, reads: Reads
) -> None:
    failure = StorageError("database unreachable")
    reads.failure = failure
    addresses = [f"user{i}@remote.example" for i in range(10)]
    found = await _resolve_all(mailstore, addresses, relaying=True)
    assert found == [failure] * 10
    assert reads.per_domain == {"remote.example": 1}
    assert not (await mailstore.resolve("user0@remote.example", relaying=True)).local
    assert reads.per_domain == {"remote.example": 2}
