"""Group commit of STORE: concurrent flag changes share a transaction, errors stay apart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, text

from courriel.errors import NotFound, StorageError
from courriel.mailstore.combine import WriteCombiner
from courriel.mailstore.service import MailStore

DATE = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


async def test_concurrent_stores_share_commits_and_each_gets_its_result(
    mailstore: MailStore,
) -> None:
    await mailstore.add_domain("example.test")
    await mailstore.add_account("alice@example.test", "pw")
    alice = await mailstore.principal("alice@example.test")
    for i in range(20):
        body = b"Subject: %d\r\n\r\nbody\r\n" % i
        await mailstore.imap.append(alice, "INBOX", body, flags=[], internal_date=DATE)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    folder = snap.folder_id
    store = mailstore.imap
    before = store._stores.batches

    calls = [store.store_flags(alice, folder, [uid], "+", ["\\Flagged"]) for uid in range(1, 21)]
    calls.append(store.store_flags(alice, folder + 1000, [1], "+", ["\\Seen"]))  # no folder
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert isinstance(results[-1], NotFound)
    done = results[:-1]
    assert all(not isinstance(r, BaseException) for r in done)
    # One transaction for the first STORE, the rest queued behind it share the next.
    assert store._stores.batches - before < 20
    uids = [r.updated[0].uid for r in done if not isinstance(r, BaseException)]
    assert uids == list(range(1, 21))
    modseqs = [r.highest_modseq for r in done if not isinstance(r, BaseException)]
    assert modseqs == sorted(set(modseqs))  # each STORE its own modseq, in order
    after = await store.open_folder(alice, "INBOX", readonly=True)
    assert all("\\Flagged" in m.flags for m in after.messages)
    delta = await store.changes_since(alice, folder, snap.last_change_id, claim_recent=False)
    assert sorted(m.uid for m in delta.updated) == list(range(1, 21))


async def test_a_failed_transaction_fails_every_caller_and_commits_nothing(
    mailstore: MailStore,
) -> None:
    combiner = WriteCombiner(mailstore.db)

    def insert(conn: Connection) -> int:
        conn.execute(
            text("INSERT INTO domains (name, created_at) VALUES ('a.test', :now)"),
            {"now": DATE.replace(tzinfo=None)},
        )
        return 1

    def broken(conn: Connection) -> int:
        conn.execute(text("SELECT * FROM no_such_table"))
        return 2

    results = await asyncio.gather(
        combiner.submit(insert), combiner.submit(broken), return_exceptions=True
    )
    assert all(isinstance(r, StorageError) for r in results)
    assert [d.name for d in await mailstore.list_domains()] == []
    assert await combiner.submit(insert) == 1
    assert [d.name for d in await mailstore.list_domains()] == ["a.test"]
    assert combiner.batches == 1


@pytest.mark.parametrize("size", [1, 3])
async def test_batches_are_bounded(mailstore: MailStore, size: int) -> None:
    combiner = WriteCombiner(mailstore.db, max_batch=size)

    def one(conn: Connection) -> int:
        return int(conn.scalar(text("SELECT 1")) or 0)

    assert await asyncio.gather(*(combiner.submit(one) for _ in range(6))) == [1] * 6
    assert combiner.batches == 6 // size
