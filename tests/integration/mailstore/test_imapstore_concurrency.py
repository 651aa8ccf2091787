"""Concurrent writers: a session that follows deltas ends where a fresh SELECT starts.

Deliveries, flag changes, expunges, moves and appends run at once (several write
transactions in flight on PostgreSQL) while a reader keeps applying ``changes_since``
deltas to its view. If a change id could become visible after a larger one (the race
the account lock of :mod:`courriel.mailstore.batch` prevents), the reader would skip
it and its view would differ from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import random
from typing import Literal

import pytest
from sqlalchemy import text

from courriel.mailstore import imapwrite
from courriel.mailstore.imapport import FolderDelta, MessageMeta
from courriel.mailstore.service import MailStore
from courriel.mailstore.types import Principal
from courriel.testing.mailstore import deliver_to

ROUNDS = 16
MODES: list[Literal["+", "-"]] = ["+", "-"]


async def _deliver(store: MailStore, principal: Principal, n: int) -> None:
    await deliver_to(store, [principal.account_id], b"Subject: %d\r\n\r\n%d\r\n" % (n, n))


def _apply(view: dict[int, MessageMeta], delta: FolderDelta) -> None:
    for meta in [*delta.added, *delta.updated]:
        view[meta.uid] = meta
    for uid in delta.expunged:
        view.pop(uid, None)


async def _writer(store: MailStore, alice: Principal, folder_id: int, seed: int) -> None:
    rng = random.Random(seed)
    for n in range(ROUNDS):
        action = rng.choice(["deliver", "flag", "expunge", "move", "append", "elsewhere"])
        if action == "deliver":
            await _deliver(store, alice, seed * 1000 + n)
        elif action == "flag":
            uids = [rng.randrange(1, 40) for _ in range(5)]
            flag = rng.choice(["\\Seen", "\\Deleted", "$Label"])
            await store.imap.store_flags(alice, folder_id, uids, rng.choice(MODES), [flag])
        elif action == "expunge":
            await store.imap.expunge(alice, folder_id)
        elif action == "move":
            await store.imap.copy(alice, folder_id, [rng.randrange(1, 40)], "Archive", move=True)
        else:
            # "elsewhere": a change of another folder moves the account's feed position
            # while an INBOX transaction may still be in flight.
            name = "INBOX" if action == "append" else "Sent"
            body = b"Subject: appended\r\n\r\n%d\r\n" % n
            await store.imap.append(alice, name, body, flags=["\\Seen"], internal_date=None)


async def test_following_deltas_matches_a_fresh_snapshot(mailstore: MailStore) -> None:
    await mailstore.add_domain("example.test")
    await mailstore.add_account("alice@example.test", "pw")
    alice = await mailstore.principal("alice@example.test")
    for n in range(10):
        await _deliver(mailstore, alice, n)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    view = {m.uid: m for m in snap.messages}
    position = snap.last_change_id
    writers = asyncio.gather(
        *(_writer(mailstore, alice, snap.folder_id, seed) for seed in range(1, 5))
    )
    while not writers.done():
        delta = await mailstore.imap.changes_since(
            alice, snap.folder_id, position, claim_recent=True
        )
        _apply(view, delta)
        position = delta.last_change_id
        await mailstore.imap.wait_for_change(alice.account_id, position, 0.05)
    await writers
    _apply(
        view,
        await mailstore.imap.changes_since(alice, snap.folder_id, position, claim_recent=True),
    )
    fresh = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    assert view == {m.uid: m for m in fresh.messages}
    assert fresh.highest_modseq >= max((m.modseq for m in fresh.messages), default=0)


async def _blocked_or_done(store: MailStore, task: asyncio.Task[object]) -> None:
    """Return once ``task`` finished or waits for a lock (PostgreSQL's own view)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    while not task.done():
        async with store.db.read() as conn:
            if await conn.scalar(query):
                return
        await asyncio.sleep(0.01)  # polling the server: there is no event to await


async def test_feed_position_never_passes_an_uncommitted_change(mailstore: MailStore) -> None:
    if mailstore.db.dialect == "sqlite":
        pytest.skip("SQLite has a single writer: commits cannot overtake each other")
    await mailstore.add_domain("example.test")
    await mailstore.add_account("alice@example.test", "pw")
    alice = await mailstore.principal("alice@example.test")
    await _deliver(mailstore, alice, 1)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    async with mailstore.db.write() as conn:
        # A flag change of INBOX, written but not committed yet...
        await imapwrite.store_flags(
            conn,
            alice.account_id,
            snap.folder_id,
            [1],
            mode="+",
            flags=["\\Seen"],
            unchanged_since=None,
        )
        # ...while another session appends to another folder of the account.
        other = asyncio.create_task(
            mailstore.imap.append(alice, "Sent", b"x\r\n", flags=[], internal_date=None)
        )
        await _blocked_or_done(mailstore, other)
        middle = await mailstore.imap.changes_since(
            alice, snap.folder_id, snap.last_change_id, claim_recent=False
        )
    await other
    after = await mailstore.imap.changes_since(
        alice, snap.folder_id, middle.last_change_id, claim_recent=False
    )
    # The reader's position after `middle` must still let it see the flag change.
    assert [m.uid for m in [*middle.updated, *after.updated]] == [1]
