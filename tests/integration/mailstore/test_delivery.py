"""Delivery into INBOX, UIDs, the change feed and POP3 maildrops."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from courriel.errors import BlobMissing, NotFound
from courriel.mailstore.service import MailStore
from courriel.mailstore.types import MaildropInUse, Principal
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import messages, utcnow
from courriel.testing.mailstore import deliver_to

TRACE = b"Received: from client.test by mx.example.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"


async def _deliver(store: MailStore, account_ids: list[int], body: bytes) -> list[int]:
    return await deliver_to(store, account_ids, body, trace_header=TRACE)


async def _uids(store: MailStore) -> list[int]:
    async with store.db.read() as conn:
        return list((await conn.scalars(select(messages.c.uid).order_by(messages.c.uid))).all())


async def _setup(store: MailStore) -> tuple[Principal, Principal]:
    await store.add_domain("example.test")
    await store.add_account("alice@example.test", "pw")
    await store.add_account("bob@example.test", "pw")
    return await store.principal("alice@example.test"), await store.principal("bob@example.test")


async def test_uids_ascend_and_are_never_reused(mailstore: MailStore) -> None:
    alice, _ = await _setup(mailstore)
    for i in range(3):
        await _deliver(mailstore, [alice.account_id], b"body %d\r\n" % i)
    drop = await mailstore.open_maildrop(alice)
    await drop.delete([drop.messages[-1].message_id])
    await drop.release()
    await _deliver(mailstore, [alice.account_id], b"body 4\r\n")
    assert await _uids(mailstore) == [1, 2, 4]


async def test_concurrent_deliveries_get_unique_uids(mailstore: MailStore) -> None:
    alice, _ = await _setup(mailstore)
    await asyncio.gather(
        *(_deliver(mailstore, [alice.account_id], b"m %d\r\n" % i) for i in range(50))
    )
    assert await _uids(mailstore) == list(range(1, 51))


async def test_multi_account_delivery_and_unknown_account(mailstore: MailStore) -> None:
    alice, bob = await _setup(mailstore)
    ids = await _deliver(mailstore, [bob.account_id, alice.account_id, bob.account_id], b"x\r\n")
    assert len(ids) == 2
    with pytest.raises(NotFound):
        await _deliver(mailstore, [999_999], b"y\r\n")


async def test_change_feed(mailstore: MailStore) -> None:
    alice, bob = await _setup(mailstore)
    assert await mailstore.latest_change_id(alice.account_id) == 0
    assert await mailstore.wait_for_change(alice.account_id, 0, 0.01) == 0
    waiter = asyncio.create_task(mailstore.wait_for_change(alice.account_id, 0, 30))
    await asyncio.sleep(0)  # let the waiter register before the delivery
    await _deliver(mailstore, [alice.account_id], b"hello\r\n")
    latest = await waiter
    assert latest == await mailstore.latest_change_id(alice.account_id) > 0
    assert await mailstore.latest_change_id(bob.account_id) == 0


async def test_change_seen_by_polling(
    mailstore: MailStore, database: Database, blobs: BlobStore
) -> None:
    # A second MailStore stands for another process: no in-process notify reaches it.
    alice, _ = await _setup(mailstore)
    other = MailStore(database, blobs, poll_interval=0.01)
    waiter = asyncio.create_task(other.wait_for_change(alice.account_id, 0, 30))
    await asyncio.sleep(0)
    await _deliver(mailstore, [alice.account_id], b"hello\r\n")
    assert await waiter > 0


async def test_maildrop(mailstore: MailStore) -> None:
    alice, bob = await _setup(mailstore)
    await _deliver(mailstore, [alice.account_id], b"first\r\n")
    await _deliver(mailstore, [alice.account_id, bob.account_id], b"shared\r\n")
    drop = await mailstore.open_maildrop(alice)
    listed = drop.messages
    assert len(listed) == 2
    folder_uidl = listed[0].uidl.split(".")[0]
    assert [m.uidl for m in listed] == [f"{folder_uidl}.1", f"{folder_uidl}.2"]
    assert listed[0].size == len(TRACE) + len(b"first\r\n")
    assert await drop.read(listed[1].message_id) == TRACE + b"shared\r\n"
    with pytest.raises(KeyError):
        await drop.read(123_456)
    before = await mailstore.latest_change_id(alice.account_id)
    await drop.delete([m.message_id for m in listed])
    assert await mailstore.latest_change_id(alice.account_id) > before
    await drop.release()
    await drop.release()
    # The body only alice had is gone; the shared one is still bob's.
    with pytest.raises(BlobMissing):
        await mailstore.blobs.get(hashlib.sha256(b"first\r\n").hexdigest())
    bob_drop = await mailstore.open_maildrop(bob)
    assert await bob_drop.read(bob_drop.messages[0].message_id) == TRACE + b"shared\r\n"
    await bob_drop.release()
    again = await mailstore.open_maildrop(alice)
    assert again.messages == []
    await again.release()


async def test_maildrop_lease_exclusive_and_takeover(
    database: Database, blobs: BlobStore, password_hasher: PasswordHasher
) -> None:
    now = [datetime(2030, 1, 1, tzinfo=utcnow().tzinfo)]
    store = MailStore(database, blobs, hasher=password_hasher, clock=lambda: now[0])
    alice, _ = await _setup(store)
    await _deliver(store, [alice.account_id], b"m\r\n")
    first = await store.open_maildrop(alice)
    with pytest.raises(MaildropInUse):
        await store.open_maildrop(alice)
    # Using the maildrop refreshes the lease.
    now[0] += timedelta(minutes=10)
    await first.read(first.messages[0].message_id)
    now[0] += timedelta(minutes=10)
    with pytest.raises(MaildropInUse):
        await store.open_maildrop(alice)
    # After 15 idle minutes the lease expires and may be taken over.
    now[0] += timedelta(minutes=6)
    second = await store.open_maildrop(alice)
    with pytest.raises(MaildropInUse):
        await first.read(first.messages[0].message_id)
    with pytest.raises(MaildropInUse):
        await first.delete([first.messages[0].message_id])
    await first.release()  # must not drop the new holder's lease
    with pytest.raises(MaildropInUse):
        await store.open_maildrop(alice)
    await second.release()
    third = await store.open_maildrop(alice)
    assert len(third.messages) == 1
    await third.release()
