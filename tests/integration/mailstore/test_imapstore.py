"""The IMAP port of the mail store (SqlImapStore): folders, selection, flags, copy, append."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher

from courriel.errors import AlreadyExists, BlobMissing, InvalidInput, NotFound
from courriel.mailstore.imapport import ImapStorePort
from courriel.mailstore.service import MailStore
from courriel.mailstore.types import Principal
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.testing.mailstore import deliver_to

TRACE = b"Received: from client.test by mx.example.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"


async def _setup(store: MailStore) -> Principal:
    await store.add_domain("example.test")
    await store.add_account("alice@example.test", "pw")
    return await store.principal("alice@example.test")


async def _deliver(store: MailStore, principal: Principal, body: bytes) -> None:
    await deliver_to(store, [principal.account_id], body, trace_header=TRACE)


async def _fill(store: MailStore, principal: Principal, count: int) -> None:
    for i in range(count):
        await _deliver(store, principal, b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))


def test_sql_store_implements_the_port(mailstore: MailStore) -> None:
    port: ImapStorePort = mailstore.imap
    assert port is mailstore.imap


async def test_list_create_and_parents(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    names = [f.name for f in await mailstore.imap.list_folders(alice)]
    assert names == sorted(["INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive"])
    info = await mailstore.imap.create_folder(alice, "a/b/c")
    assert info.name == "a/b/c"
    assert not info.subscribed
    names = [f.name for f in await mailstore.imap.list_folders(alice)]
    assert {"a", "a/b", "a/b/c"} <= set(names)
    with pytest.raises(AlreadyExists):
        await mailstore.imap.create_folder(alice, "a/b")
    with pytest.raises(AlreadyExists):
        await mailstore.imap.create_folder(alice, "inbox")
    special = await mailstore.imap.create_folder(alice, "Spam", special_use="\\Junk")
    assert special.special_use == "\\Junk"


@pytest.mark.parametrize(
    "name", ["", "/a", "a/", "a//b", "a\x00b", "tab\there", "a\x7fb", "a*", "50%", "x" * 256]
)
async def test_bad_names_are_refused(mailstore: MailStore, name: str) -> None:
    alice = await _setup(mailstore)
    with pytest.raises(InvalidInput):
        await mailstore.imap.create_folder(alice, name)
    with pytest.raises(InvalidInput):
        await mailstore.imap.open_folder(alice, name, readonly=True)


async def test_inbox_is_case_insensitive_other_names_are_not(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    snap = await mailstore.imap.open_folder(alice, "iNbOx", readonly=True)
    assert snap.name == "INBOX"
    child = await mailstore.imap.create_folder(alice, "inbox/Lists")
    assert child.name == "INBOX/Lists"
    await mailstore.imap.create_folder(alice, "work")
    await mailstore.imap.create_folder(alice, "Work")  # a different folder
    with pytest.raises(NotFound):
        await mailstore.imap.folder_status(alice, "WORK")


async def test_delete_folder(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    with pytest.raises(InvalidInput):
        await mailstore.imap.delete_folder(alice, "INBOX")
    with pytest.raises(NotFound):
        await mailstore.imap.delete_folder(alice, "nothing")
    await mailstore.imap.create_folder(alice, "a/b")
    with pytest.raises(InvalidInput, match="children"):
        await mailstore.imap.delete_folder(alice, "a")
    await mailstore.imap.append(
        alice, "a/b", b"Subject: x\r\n\r\nx\r\n", flags=[], internal_date=None
    )
    await mailstore.imap.delete_folder(alice, "a/b")
    await mailstore.imap.delete_folder(alice, "a")
    assert "a" not in {f.name for f in await mailstore.imap.list_folders(alice)}


async def test_uidvalidity_grows_after_delete_and_rename(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    first = await mailstore.imap.folder_status(alice, "Archive")
    await mailstore.imap.delete_folder(alice, "Archive")
    await mailstore.imap.create_folder(alice, "Archive")
    again = await mailstore.imap.folder_status(alice, "Archive")
    assert again.uidvalidity > first.uidvalidity
    await mailstore.imap.rename_folder(alice, "Archive", "Old")
    await mailstore.imap.create_folder(alice, "Archive")
    third = await mailstore.imap.folder_status(alice, "Archive")
    renamed = await mailstore.imap.folder_status(alice, "Old")
    assert renamed.uidvalidity > again.uidvalidity
    assert third.uidvalidity > renamed.uidvalidity


async def test_rename_moves_children_and_messages(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await mailstore.imap.create_folder(alice, "a/x")
    message = b"Subject: keep\r\n\r\nbody\r\n"
    done = await mailstore.imap.append(alice, "a/x", message, flags=["\\Seen"], internal_date=None)
    old = await mailstore.imap.open_folder(alice, "a/x", readonly=True)
    await mailstore.imap.rename_folder(alice, "a", "b/c")
    names = {f.name for f in await mailstore.imap.list_folders(alice)}
    assert {"b", "b/c", "b/c/x"} <= names
    assert not {"a", "a/x"} & names
    snap = await mailstore.imap.open_folder(alice, "b/c/x", readonly=True)
    assert [m.uid for m in snap.messages] == [done.uid]
    assert snap.messages[0].flags == {"\\Seen"}
    assert snap.uidvalidity > old.uidvalidity
    assert await mailstore.imap.read_message(alice, snap.messages[0].message_id) == message
    # The session that had the old folder selected learns that it is gone.
    delta = await mailstore.imap.changes_since(
        alice, old.folder_id, old.last_change_id, claim_recent=False
    )
    assert delta.gone


async def test_rename_errors(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await mailstore.imap.create_folder(alice, "a")
    with pytest.raises(NotFound):
        await mailstore.imap.rename_folder(alice, "nothing", "b")
    with pytest.raises(AlreadyExists):
        await mailstore.imap.rename_folder(alice, "a", "Sent")
    with pytest.raises(InvalidInput):
        await mailstore.imap.rename_folder(alice, "a", "a/b")
    with pytest.raises(InvalidInput):
        await mailstore.imap.rename_folder(alice, "a", "b//c")


async def test_rename_inbox_moves_its_messages(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await _fill(mailstore, alice, 3)
    await mailstore.imap.create_folder(alice, "INBOX/child")
    before = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    await mailstore.imap.rename_folder(alice, "INBOX", "Old Mail")
    moved = await mailstore.imap.open_folder(alice, "Old Mail", readonly=True)
    assert [m.uid for m in moved.messages] == [1, 2, 3]
    inbox = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    assert inbox.messages == []
    assert inbox.uidvalidity == before.uidvalidity
    assert inbox.uidnext == 4  # UIDs are never reused
    assert "INBOX/child" in {f.name for f in await mailstore.imap.list_folders(alice)}
    delta = await mailstore.imap.changes_since(
        alice, before.folder_id, before.last_change_id, claim_recent=False
    )
    assert delta.expunged == [1, 2, 3]
    assert not delta.gone


async def test_subscriptions_outlive_folders(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    assert "INBOX" in await mailstore.imap.subscriptions(alice)
    await mailstore.imap.create_folder(alice, "news")
    with pytest.raises(NotFound):
        await mailstore.imap.set_subscribed(alice, "nothing", True)
    await mailstore.imap.set_subscribed(alice, "news", True)
    assert "news" in await mailstore.imap.subscriptions(alice)
    await mailstore.imap.delete_folder(alice, "news")
    # RFC 9051 §6.3.7: the name stays subscribed without its folder.
    assert "news" in await mailstore.imap.subscriptions(alice)
    assert "news" not in {f.name for f in await mailstore.imap.list_folders(alice)}
    # Created again, it is subscribed again (one subscription, not two).
    info = await mailstore.imap.create_folder(alice, "news")
    assert info.subscribed
    assert (await mailstore.imap.subscriptions(alice)).count("news") == 1
    await mailstore.imap.set_subscribed(alice, "news", False)
    assert "news" not in await mailstore.imap.subscriptions(alice)
    # Unsubscribing a name that has no folder works (and is idempotent).
    await mailstore.imap.set_subscribed(alice, "news", True)
    await mailstore.imap.delete_folder(alice, "news")
    await mailstore.imap.set_subscribed(alice, "news", False)
    await mailstore.imap.set_subscribed(alice, "news", False)
    assert "news" not in await mailstore.imap.subscriptions(alice)


async def test_rename_carries_subscriptions_and_keeps_old_names(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await mailstore.imap.create_folder(alice, "a/b")
    await mailstore.imap.set_subscribed(alice, "a/b", True)
    await mailstore.imap.rename_folder(alice, "a", "z")
    subscribed = await mailstore.imap.subscriptions(alice)
    assert {"a/b", "z/b"} <= set(subscribed)
    assert "z" not in subscribed  # "a" was not subscribed
    folders = {f.name: f.subscribed for f in await mailstore.imap.list_folders(alice)}
    assert folders["z/b"]
    assert not folders["z"]


async def test_status_counts(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await _fill(mailstore, alice, 4)
    status = await mailstore.imap.folder_status(alice, "INBOX")
    assert (status.messages, status.recent, status.unseen, status.deleted) == (4, 4, 4, 0)
    assert status.uidnext == 5
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    assert sum(m.size for m in snap.messages) == status.size
    await mailstore.imap.store_flags(alice, snap.folder_id, [1, 2], "+", ["\\Seen"])
    await mailstore.imap.store_flags(alice, snap.folder_id, [2], "+", ["\\Deleted"])
    after = await mailstore.imap.folder_status(alice, "INBOX")
    assert (after.messages, after.recent, after.unseen, after.deleted) == (4, 0, 2, 1)
    assert after.highest_modseq > status.highest_modseq
    empty = await mailstore.imap.folder_status(alice, "Sent")
    assert (empty.messages, empty.size, empty.uidnext) == (0, 0, 1)
    with pytest.raises(NotFound):
        await mailstore.imap.folder_status(alice, "nothing")


async def test_recent_is_claimed_once(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await _fill(mailstore, alice, 3)
    examine = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    assert examine.recent_from == examine.uidnext
    one, two = await asyncio.gather(
        mailstore.imap.open_folder(alice, "INBOX", readonly=False),
        mailstore.imap.open_folder(alice, "INBOX", readonly=False),
    )
    claimed = [s for s in (one, two) if s.recent_from < s.uidnext]
    assert len(claimed) == 1
    assert claimed[0].recent_from == 1
    third = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    assert third.recent_from == third.uidnext
    # New mail: the first session that asks claims it, the other does not.
    await _deliver(mailstore, alice, b"Subject: new\r\n\r\nnew\r\n")
    first = await mailstore.imap.changes_since(
        alice, one.folder_id, one.last_change_id, claim_recent=True
    )
    second = await mailstore.imap.changes_since(
        alice, two.folder_id, two.last_change_id, claim_recent=True
    )
    assert [m.uid for m in first.added] == [m.uid for m in second.added] == [4]
    assert first.recent_from == 4
    assert second.recent_from is None
    assert (await mailstore.imap.folder_status(alice, "INBOX")).recent == 0


async def test_changes_since_sees_other_sessions(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await _fill(mailstore, alice, 3)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    assert [m.uid for m in snap.messages] == [1, 2, 3]
    quiet = await mailstore.imap.changes_since(
        alice, snap.folder_id, snap.last_change_id, claim_recent=True
    )
    assert (quiet.added, quiet.updated, quiet.expunged) == ([], [], [])
    assert quiet.last_change_id == snap.last_change_id
    assert quiet.uidnext == snap.uidnext
    # Another session: new mail, a flag change, an expunge, mail added and removed again.
    await _deliver(mailstore, alice, b"Subject: 4\r\n\r\n4\r\n")
    await _deliver(mailstore, alice, b"Subject: 5\r\n\r\n5\r\n")
    stored = await mailstore.imap.store_flags(alice, snap.folder_id, [1, 3, 5], "+", ["\\Deleted"])
    assert [m.uid for m in stored.updated] == [1, 3, 5]
    await mailstore.imap.store_flags(alice, snap.folder_id, [2], "+", ["$Important"])
    assert await mailstore.imap.expunge(alice, snap.folder_id, [1, 5]) == [1, 5]
    delta = await mailstore.imap.changes_since(
        alice, snap.folder_id, snap.last_change_id, claim_recent=False
    )
    assert [m.uid for m in delta.added] == [4]
    assert {m.uid: m.flags for m in delta.updated} == {2: {"$Important"}, 3: {"\\Deleted"}}
    assert delta.expunged == [1]
    assert delta.uidnext == 6
    assert delta.highest_modseq == stored.highest_modseq + 2
    assert delta.last_change_id > snap.last_change_id
    again = await mailstore.imap.changes_since(
        alice, snap.folder_id, delta.last_change_id, claim_recent=False
    )
    assert (again.added, again.updated, again.expunged) == ([], [], [])


async def test_store_flags_modes_and_modseq(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await _fill(mailstore, alice, 3)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    fid = snap.folder_id
    added = await mailstore.imap.store_flags(alice, fid, [1, 2, 99], "+", ["\\seen", "Work"])
    assert [m.flags for m in added.updated] == [{"\\Seen", "Work"}] * 2
    assert {m.modseq for m in added.updated} == {added.highest_modseq}
    assert added.highest_modseq > snap.highest_modseq
    # Same flags again (keyword in another case): nothing changes, no new modseq.
    same = await mailstore.imap.store_flags(alice, fid, [1], "+", ["WORK", "\\Seen"])
    assert same.updated == []
    assert [m.uid for m in same.unchanged] == [1]
    assert same.highest_modseq == added.highest_modseq
    removed = await mailstore.imap.store_flags(alice, fid, [1], "-", ["work"])
    assert removed.updated[0].flags == {"\\Seen"}
    replaced = await mailstore.imap.store_flags(alice, fid, [1, 3], "", ["\\Flagged", "\\Recent"])
    assert {m.uid: m.flags for m in replaced.updated} == {1: {"\\Flagged"}, 3: {"\\Flagged"}}
    reopened = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    by_uid = {m.uid: m for m in reopened.messages}
    assert by_uid[2].flags == {"\\Seen", "Work"}
    assert by_uid[2].modseq == added.highest_modseq  # unchanged messages keep theirs
    assert by_uid[1].modseq == replaced.highest_modseq
    assert reopened.keywords == {"Work"}
    with pytest.raises(NotFound):
        await mailstore.imap.store_flags(alice, 10**9, [1], "+", ["\\Seen"])


async def test_unchanged_since(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await _fill(mailstore, alice, 2)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    base = snap.highest_modseq
    await mailstore.imap.store_flags(alice, snap.folder_id, [2], "+", ["\\Flagged"])
    result = await mailstore.imap.store_flags(
        alice, snap.folder_id, [1, 2], "+", ["\\Seen"], unchanged_since=base
    )
    # RFC 7162 §3.1.3: message 2 changed after base, so it is refused and reported.
    assert result.modified == [2]
    assert [m.uid for m in result.updated] == [1]
    status = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    assert {m.uid: m.flags for m in status.messages} == {1: {"\\Seen"}, 2: {"\\Flagged"}}


async def test_expunge_and_uid_monotonicity(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await _fill(mailstore, alice, 4)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    assert await mailstore.imap.expunge(alice, snap.folder_id) == []
    await mailstore.imap.store_flags(alice, snap.folder_id, [2, 3, 4], "+", ["\\Deleted"])
    # UID EXPUNGE: only the given UIDs among the \Deleted ones.
    assert await mailstore.imap.expunge(alice, snap.folder_id, [1, 2]) == [2]
    assert await mailstore.imap.expunge(alice, snap.folder_id) == [3, 4]
    await _deliver(mailstore, alice, b"Subject: after\r\n\r\nafter\r\n")
    after = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    assert [m.uid for m in after.messages] == [1, 5]
    with pytest.raises(NotFound):
        await mailstore.imap.expunge(alice, 10**9)


async def test_copy_and_move(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await _fill(mailstore, alice, 4)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    await mailstore.imap.store_flags(alice, snap.folder_id, [3], "+", ["\\Flagged"])
    await mailstore.imap.create_folder(alice, "keep")
    await mailstore.imap.append(
        alice, "keep", b"Subject: a\r\n\r\na\r\n", flags=[], internal_date=None
    )
    copied = await mailstore.imap.copy(alice, snap.folder_id, [3, 1, 42], "keep", move=False)
    keep = await mailstore.imap.folder_status(alice, "keep")
    assert copied.uidvalidity == keep.uidvalidity
    assert (copied.source_uids, copied.dest_uids) == ([1, 3], [2, 3])
    target = await mailstore.imap.open_folder(alice, "keep", readonly=True)
    by_uid = {m.uid: m for m in target.messages}
    source = {m.uid: m for m in snap.messages}
    assert by_uid[3].flags == {"\\Flagged"}
    assert by_uid[2].internal_date == source[1].internal_date
    assert by_uid[2].blob_key == source[1].blob_key
    original = await mailstore.imap.read_message(alice, source[1].message_id)
    assert await mailstore.imap.read_message(alice, by_uid[2].message_id) == original
    moved = await mailstore.imap.copy(alice, snap.folder_id, [2, 4], "keep", move=True)
    assert (moved.source_uids, moved.dest_uids) == ([2, 4], [4, 5])
    delta = await mailstore.imap.changes_since(
        alice, snap.folder_id, snap.last_change_id, claim_recent=False
    )
    assert delta.expunged == [2, 4]
    inbox = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    assert [m.uid for m in inbox.messages] == [1, 3]
    with pytest.raises(NotFound):
        await mailstore.imap.copy(alice, snap.folder_id, [1], "nothing", move=False)
    nothing = await mailstore.imap.copy(alice, snap.folder_id, [99], "keep", move=True)
    assert (nothing.source_uids, nothing.dest_uids) == ([], [])


async def test_append_then_read_is_octet_exact(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    message = b"From: a@example.test\r\nSubject: \xc3\xa9t\xc3\xa9\r\n\r\nline 1\r\n\r\n.\r\n"
    when = datetime(2024, 2, 29, 12, 30, tzinfo=UTC)
    done = await mailstore.imap.append(
        alice, "Drafts", message, flags=["\\Draft", "$x"], internal_date=when
    )
    snap = await mailstore.imap.open_folder(alice, "Drafts", readonly=True)
    assert snap.uidvalidity == done.uidvalidity
    meta = snap.messages[0]
    assert (meta.uid, meta.size, meta.flags) == (
        done.uid,
        len(message),
        frozenset({"\\Draft", "$x"}),
    )
    assert meta.internal_date == when
    assert await mailstore.imap.read_message(alice, meta.message_id) == message
    with pytest.raises(NotFound):
        await mailstore.imap.append(alice, "nothing", message, flags=[], internal_date=None)
    with pytest.raises(InvalidInput):
        await mailstore.imap.append(
            alice, "Drafts", message, flags=[], internal_date=datetime(2024, 1, 1)
        )


async def test_read_message_of_another_account_is_not_found(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await mailstore.add_account("bob@example.test", "pw")
    bob = await mailstore.principal("bob@example.test")
    await _fill(mailstore, alice, 1)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    message_id = snap.messages[0].message_id
    assert (await mailstore.imap.read_message(alice, message_id)).startswith(TRACE)
    with pytest.raises(NotFound):
        await mailstore.imap.read_message(bob, message_id)
    with pytest.raises(NotFound):
        await mailstore.imap.store_flags(bob, snap.folder_id, [1], "+", ["\\Seen"])
    gone = await mailstore.imap.changes_since(bob, snap.folder_id, 0, claim_recent=False)
    assert gone.gone


async def test_wait_for_change_woken_by_store_flags(
    database: Database, blobs: BlobStore, password_hasher: PasswordHasher
) -> None:
    # Polling every hour: only the in-process notify can wake the waiter in time.
    store = MailStore(database, blobs, hasher=password_hasher, poll_interval=3600)
    alice = await _setup(store)
    await _fill(store, alice, 1)
    snap = await store.imap.open_folder(alice, "INBOX", readonly=False)
    waiter = asyncio.create_task(
        store.imap.wait_for_change(alice.account_id, snap.last_change_id, 3600)
    )
    while not store.feed._waiters.get(alice.account_id):  # the waiter has registered
        await asyncio.sleep(0)
    await store.imap.store_flags(alice, snap.folder_id, [1], "+", ["\\Seen"])
    latest = await asyncio.wait_for(waiter, 5)
    assert latest > snap.last_change_id


async def test_delete_folder_frees_unreferenced_blobs(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await mailstore.imap.create_folder(alice, "tmp")
    only = b"Subject: only here\r\n\r\nonly\r\n"
    done = await mailstore.imap.append(alice, "tmp", only, flags=[], internal_date=None)
    snap = await mailstore.imap.open_folder(alice, "tmp", readonly=True)
    key = snap.messages[0].blob_key
    assert done.uid == 1
    await mailstore.imap.delete_folder(alice, "tmp")
    with pytest.raises(BlobMissing):
        await mailstore.blobs.get(key)


async def test_expunge_frees_a_body_only_when_no_copy_remains(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    body = b"Subject: shared\r\n\r\nshared\r\n"
    await mailstore.imap.append(alice, "INBOX", body, flags=["\\Deleted"], internal_date=None)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=False)
    key = snap.messages[0].blob_key
    await mailstore.imap.copy(alice, snap.folder_id, [1], "Archive", move=False)
    assert await mailstore.imap.expunge(alice, snap.folder_id) == [1]
    assert await mailstore.blobs.get(key) == body  # the copy in Archive still uses it
    archive = await mailstore.imap.open_folder(alice, "Archive", readonly=False)
    assert archive.messages[0].flags == {"\\Deleted"}  # COPY keeps flags
    assert await mailstore.imap.expunge(alice, archive.folder_id) == [1]
    with pytest.raises(BlobMissing):
        await mailstore.blobs.get(key)


async def test_deleted_folder_is_gone_for_its_sessions(mailstore: MailStore) -> None:
    alice = await _setup(mailstore)
    await mailstore.imap.create_folder(alice, "tmp")
    snap = await mailstore.imap.open_folder(alice, "tmp", readonly=False)
    latest = await mailstore.latest_change_id(alice.account_id)
    await mailstore.imap.delete_folder(alice, "tmp")
    # The delete is a change of the account, so IDLE wakes up and learns the news.
    assert await mailstore.latest_change_id(alice.account_id) > latest
    delta = await mailstore.imap.changes_since(
        alice, snap.folder_id, snap.last_change_id, claim_recent=True
    )
    assert delta.gone
    assert delta.last_change_id > latest
    with pytest.raises(NotFound):
        await mailstore.imap.expunge(alice, snap.folder_id)
    with pytest.raises(NotFound):
        await mailstore.imap.copy(alice, snap.folder_id, [1], "INBOX", move=True)
