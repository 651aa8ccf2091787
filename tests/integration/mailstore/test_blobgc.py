"""free_blobs racing with a delivery of the very same body (issue 4, brief BG).

The dangerous point is between free_blobs' reference check and its delete: a writer of
the same body that commits its row there used to be left pointing at a deleted body.
Each test parks free_blobs at that point (its ``after_check`` hook) and delivers the
same body through the group committer meanwhile; the body must survive.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.delivery.committer import CommitJob, GroupCommitter
from courriel.errors import BlobMissing
from courriel.mailstore.messages import INBOX, expunge, free_blobs
from courriel.mailstore.service import MailStore
from courriel.storage.blobs import BlobStore, FilePending, FsBlobStore, SqlBlobStore
from courriel.storage.db import Database
from courriel.storage.models import folders, messages

BODY = b"Subject: the same newsletter\r\n\r\nSent to many accounts, byte for byte.\r\n"


class _SignallingFsStore(FsBlobStore):
    """Sets ``persisted`` each time a batch of bodies was made durable (or found)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.persisted = threading.Event()

    def commit_many(self, items: Mapping[str, FilePending]) -> None:
        super().commit_many(items)
        self.persisted.set()


async def _job(store: BlobStore, account_id: int) -> CommitJob:
    writer = store.writer()
    await writer.write(BODY)
    prepared = writer.prepare()
    return CommitJob(
        sender="news@shop.test",
        account_ids=(account_id,),
        remote=(),
        blob=prepared,
        size=prepared.ref.size,
        trace_header=b"",
        internal_date=datetime.now(UTC),
    )


async def _setup(db: Database, store: BlobStore) -> tuple[MailStore, int, int]:
    mailstore = MailStore(
        db, store, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    await mailstore.add_domain("shop.test")
    first = await mailstore.add_account("a@shop.test", "pw-a-123456")
    second = await mailstore.add_account("b@shop.test", "pw-b-123456")
    return mailstore, first.id, second.id


async def _keys_of(db: Database, account_id: int) -> list[tuple[int, str]]:
    async with db.read() as conn:
        return await _keys_of_conn(conn, account_id)


async def _expunge_all(db: Database, account_id: int) -> list[str]:
    async with db.write() as conn:
        folder_id = await conn.scalar(
            select(folders.c.id).where(folders.c.account_id == account_id, folders.c.name == INBOX)
        )
        assert folder_id is not None
        ids = [i for i, _key in await _keys_of_conn(conn, account_id)]
        return await expunge(conn, account_id=account_id, folder_id=folder_id, message_ids=ids)


async def _keys_of_conn(conn: AsyncConnection, account_id: int) -> list[tuple[int, str]]:
    rows = await conn.execute(
        select(messages.c.id, messages.c.blob_key)
        .join(folders, folders.c.id == messages.c.folder_id)
        .where(folders.c.account_id == account_id)
    )
    return [(int(r.id), str(r.blob_key)) for r in rows]


async def test_fs_body_found_then_freed_is_written_again(
    database: Database, tmp_path: Path
) -> None:
    store = _SignallingFsStore(tmp_path / "blobs")
    mailstore, first, second = await _setup(database, store)
    committer = GroupCommitter(database, mailstore)
    try:
        await committer.commit(await _job(store, first))
        freed = await _expunge_all(database, first)
        assert len(freed) == 1
        checked, release = asyncio.Event(), asyncio.Event()

        async def park(keys: Sequence[str]) -> None:
            assert keys == freed  # unreferenced at the check
            checked.set()
            await release.wait()

        deleter = asyncio.create_task(free_blobs(database, store, freed, after_check=park))
        await checked.wait()
        # The same body arrives: the committer finds it on disk (nothing to write) ...
        store.persisted.clear()
        writer = asyncio.create_task(committer.commit(await _job(store, second)))
        await asyncio.to_thread(store.persisted.wait)
        # ... and only then does the parked free_blobs delete it.
        release.set()
        await deleter
        await writer
        [(_id, key)] = await _keys_of(database, second)
        assert key == freed[0]
        assert await store.get(key) == BODY
    finally:
        await committer.close()


async def test_sql_writer_committing_at_the_dangerous_point_keeps_its_body(
    database: Database,
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite: one write lock for all; the fs test covers its interleaving")
    store = SqlBlobStore(database)
    mailstore, first, second = await _setup(database, store)
    committer = GroupCommitter(database, mailstore)
    try:
        await committer.commit(await _job(store, first))
        freed = await _expunge_all(database, first)
        assert len(freed) == 1
        checked, release = asyncio.Event(), asyncio.Event()

        async def park(keys: Sequence[str]) -> None:
            assert keys == freed
            checked.set()
            await release.wait()

        deleter = asyncio.create_task(free_blobs(database, store, freed, after_check=park))
        await checked.wait()
        writer = asyncio.create_task(committer.commit(await _job(store, second)))
        # Let the writer go as far as it can: commit (the old race) or wait for the lock.
        while not writer.done() and not await _someone_waits_for_a_lock(database):
            await asyncio.sleep(0.01)
        assert not writer.done(), "the writer committed while free_blobs held the key"
        release.set()
        await deleter
        await writer
        [(_id, key)] = await _keys_of(database, second)
        assert await store.get(key) == BODY
    finally:
        await committer.close()


async def _someone_waits_for_a_lock(db: Database) -> bool:
    async with db.read() as conn:
        waiting = await conn.scalar(
            select(func.count()).select_from(
                text("pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
        )
    return bool(waiting)


async def test_unreferenced_body_is_freed_and_referenced_one_kept(
    database: Database, blobs: BlobStore
) -> None:
    mailstore, first, second = await _setup(database, blobs)
    committer = GroupCommitter(database, mailstore)
    try:
        await committer.commit(await _job(blobs, first))
        await committer.commit(await _job(blobs, second))
        freed = await _expunge_all(database, first)
        assert len(freed) == 1
        await free_blobs(database, blobs, freed)
        assert await blobs.get(freed[0]) == BODY  # b@ still has it
        freed = await _expunge_all(database, second)
        await free_blobs(database, blobs, freed)
        with pytest.raises(BlobMissing):
            await blobs.get(freed[0])
    finally:
        await committer.close()
