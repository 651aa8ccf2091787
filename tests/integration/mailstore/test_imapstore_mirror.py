"""The folder mirror of SqlImapStore: SELECT reads only what changed, and stays correct.

A second MailStore on its own Database stands for another process (a node of a
PostgreSQL fleet, or ``courriel`` CLI beside ``serve``): it has its own mirror and its
own change feed, so the only way the first store can learn of its writes is the
``changes`` rows. Every snapshot the mirror gives is compared with a full read by a
store whose mirror is empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher

from courriel.mailstore.imapport import FolderDelta, FolderSnapshot, MessageMeta
from courriel.mailstore.imapstore import SqlImapStore
from courriel.mailstore.mirror import FolderMirror, MirrorEntry, advance
from courriel.mailstore.service import MailStore
from courriel.mailstore.types import Principal
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database

DATE = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
async def other(
    db_url: str, blobs: BlobStore, password_hasher: PasswordHasher
) -> AsyncIterator[MailStore]:
    """Another process's MailStore on the same database."""
    db = await Database.open(db_url)
    yield MailStore(db, blobs, hasher=password_hasher)
    await db.close()


async def _alice(store: MailStore) -> Principal:
    await store.add_domain("example.test")
    await store.add_account("alice@example.test", "pw")
    return await store.principal("alice@example.test")


async def _append(store: MailStore, who: Principal, folder: str, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        body = b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i)
        await store.imap.append(who, folder, body, flags=[], internal_date=DATE)


async def _fresh(store: MailStore, who: Principal, name: str) -> FolderSnapshot:
    """A full read, by a store whose mirror is empty."""
    plain = SqlImapStore(store.db, store.blobs, store.feed, FolderMirror())
    snap = await plain.open_folder(who, name, readonly=True)
    assert plain.mirror.full_reads == 1
    return snap


async def test_select_again_reads_the_changes_of_another_process(
    mailstore: MailStore, other: MailStore
) -> None:
    alice = await _alice(mailstore)
    await _append(mailstore, alice, "INBOX", 6)
    first = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    assert mailstore.imap.mirror.full_reads == 1
    assert [m.uid for m in first.messages] == [1, 2, 3, 4, 5, 6]

    # Another process flags, adds a keyword, expunges and appends.
    folder = first.folder_id
    await other.imap.store_flags(alice, folder, [2], "+", ["\\Flagged", "$Work"])
    await other.imap.store_flags(alice, folder, [3, 5], "+", ["\\Deleted"])
    assert await other.imap.expunge(alice, folder) == [3, 5]
    await _append(other, alice, "INBOX", 2, first=10)

    again = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    assert mailstore.imap.mirror.delta_reads == 1
    assert again == await _fresh(mailstore, alice, "INBOX")
    assert [m.uid for m in again.messages] == [1, 2, 4, 6, 7, 8]
    assert again.keywords == frozenset({"$Work"})
    assert again.messages[1].flags == frozenset({"\\Flagged", "$Work"})

    # The keyword's last message loses it: FLAGS no longer lists it.
    await other.imap.store_flags(alice, folder, [2], "-", ["$work"])
    third = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    assert third.keywords == frozenset()
    assert third == await _fresh(mailstore, alice, "INBOX")


async def test_select_through_the_mirror_claims_recent(
    mailstore: MailStore, other: MailStore
) -> None:
    alice = await _alice(mailstore)
    await _append(mailstore, alice, "INBOX", 3)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    assert snap.recent_from == 1
    await _append(other, alice, "INBOX", 2, first=5)
    again = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    assert mailstore.imap.mirror.delta_reads == 1
    # RFC 3501 §2.3.2: only the two new messages are left to claim.
    assert again.recent_from == 4
    assert [m.uid for m in again.messages] == [1, 2, 3, 4, 5]
    assert (await mailstore.imap.open_folder(alice, "INBOX", readonly=False)).recent_from == 6


async def test_a_folder_renamed_and_created_again_is_read_in_full(
    mailstore: MailStore, other: MailStore
) -> None:
    alice = await _alice(mailstore)
    await mailstore.imap.create_folder(alice, "Box")
    await _append(mailstore, alice, "Box", 3)
    await _append(mailstore, alice, "INBOX", 2)
    await mailstore.imap.open_folder(alice, "Box", readonly=True)
    await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    await other.imap.rename_folder(alice, "Box", "Old")
    await other.imap.create_folder(alice, "Box")
    await _append(other, alice, "Box", 1, first=20)
    # RFC 9051 §6.3.6: renaming INBOX moves its messages away.
    await other.imap.rename_folder(alice, "INBOX", "Moved")

    box = await mailstore.imap.open_folder(alice, "Box", readonly=True)
    inbox = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    assert mailstore.imap.mirror.delta_reads == 0
    assert box == await _fresh(mailstore, alice, "Box")
    assert inbox == await _fresh(mailstore, alice, "INBOX")
    assert [m.uid for m in box.messages] == [1]
    assert inbox.messages == []
    moved = await mailstore.imap.open_folder(alice, "Moved", readonly=True)
    assert [m.uid for m in moved.messages] == [1, 2]


async def test_a_second_store_sees_the_first_stores_own_changes(
    mailstore: MailStore, other: MailStore
) -> None:
    alice = await _alice(mailstore)
    await _append(mailstore, alice, "INBOX", 4)
    await other.imap.open_folder(alice, "INBOX", readonly=True)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    await mailstore.imap.store_flags(alice, snap.folder_id, [1, 4], "+", ["\\Seen"])
    seen = await other.imap.open_folder(alice, "INBOX", readonly=True)
    assert other.imap.mirror.delta_reads == 1
    assert [m.uid for m in seen.messages if "\\Seen" in m.flags] == [1, 4]
    assert seen == await _fresh(mailstore, alice, "INBOX")


# -- the mirror on its own ------------------------------------------------------------


def _meta(uid: int, flags: frozenset[str] = frozenset()) -> MessageMeta:
    return MessageMeta(
        message_id=uid, uid=uid, flags=flags, modseq=1, size=10, internal_date=DATE, blob_key="k"
    )


def _entry(uids: list[int], *, position: int = 5, name: str = "INBOX") -> MirrorEntry:
    return MirrorEntry(
        account_id=1,
        folder_id=1,
        name=name,
        uidvalidity=1,
        position=position,
        uids=tuple(uids),
        messages=tuple(_meta(u) for u in uids),
        keywords=frozenset(),
    )


def _delta(**kw: object) -> FolderDelta:
    base: dict[str, object] = {
        "added": [],
        "updated": [],
        "expunged": [],
        "uidnext": 100,
        "highest_modseq": 9,
        "last_change_id": 8,
    }
    base.update(kw)
    return FolderDelta(**base)  # type: ignore[arg-type]


def test_advance_patches_small_and_large_deltas_alike() -> None:
    entry = _entry(list(range(1, 201)))
    flagged = [_meta(u, frozenset({"\\Flagged"})) for u in range(10, 200, 2)]
    for updated in (flagged[:3], flagged):  # the bisect path and the rebuild path
        new = advance(entry, _delta(updated=updated, expunged=[1, 199], added=[_meta(300)]))
        assert new is not None
        assert new.position == 8
        assert new.uids == tuple(m.uid for m in new.messages)
        assert new.uids[0] == 2 and new.uids[-2:] == (200, 300)
        assert len(new.uids) == 199
        changed = {m.uid for m in new.messages if m.flags}
        assert changed == {m.uid for m in updated}


def test_advance_refuses_a_delta_that_does_not_follow() -> None:
    entry = _entry([1, 2, 3])
    assert advance(entry, _delta(expunged=[7])) is None
    assert advance(entry, _delta(updated=[_meta(9)])) is None
    assert advance(entry, _delta(added=[_meta(2)])) is None
    assert advance(entry, _delta(gone=True)) is None


def test_the_mirror_keeps_newer_entries_within_its_budget() -> None:
    mirror = FolderMirror(max_messages=5)
    mirror.put(_entry([1, 2, 3], position=5))
    mirror.put(_entry([1, 2], position=4))  # older: ignored
    held = mirror.get(1, "INBOX")
    assert held is not None and held.position == 5
    mirror.put(_entry([1, 2], name="Sent"))
    assert mirror.held == 5
    mirror.put(_entry([1], name="Junk"))  # over budget: the least recently used goes
    assert mirror.get(1, "INBOX") is None
    assert mirror.held == 3
    mirror.put(_entry(list(range(1, 10)), name="Big"))  # larger than the budget
    assert mirror.get(1, "Big") is None
    mirror.discard(1, "Sent")
    assert len(mirror) == 1 and mirror.held == 1
