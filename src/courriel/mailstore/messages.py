"""Messages in folders: delivery into INBOX, expunge, and freeing unreferenced blobs.

Delivery of one message is :func:`courriel.mailstore.batch.deliver_many` with one copy,
so the single and the group-committed paths write the same rows.

Invariants:
- A UID is taken from ``folders.uidnext`` by an ``UPDATE … RETURNING`` in the caller's
  transaction, so UIDs ascend strictly per folder and are never reused, even after an
  expunge (RFC 9051 §2.3.1.1); the row lock of that UPDATE serialises concurrent
  deliveries to one folder on PostgreSQL, the write lock does on SQLite.
- Every change bumps ``folders.highest_modseq`` and writes a ``changes`` row in the same
  transaction (RFC 7162 §3.1.2: the mod-sequence grows with every change).
- A blob is deleted only after the transaction that dropped its last reference committed,
  and only by :func:`free_blobs`, which holds the key's blob lock
  (:mod:`courriel.storage.blobgc`) while it re-checks references and deletes; every
  writer of a row holds the same lock (shared) and restores a missing body before its
  row commits. So a delivery of the very same body racing with the delete either is
  seen by the re-check or finds the body gone and writes it again: never a row without
  its body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.mailstore.batch import INBOX, Copy, deliver_many
from courriel.mailstore.imapcommon import lock_account, record_changes
from courriel.storage import blobgc
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import folders, messages, queue_messages

__all__ = ["INBOX", "bump_modseq", "deliver", "expunge", "free_blobs"]


async def bump_modseq(conn: AsyncConnection, folder_id: int, *, uids: int = 0) -> tuple[int, int]:
    """Take ``uids`` new UIDs and one new mod-sequence from a folder.

    Returns:
        ``(first_uid, modseq)``; ``first_uid`` is meaningless when ``uids`` is 0.
    """
    row = (
        await conn.execute(
            update(folders)
            .where(folders.c.id == folder_id)
            .values(
                uidnext=folders.c.uidnext + uids,
                highest_modseq=folders.c.highest_modseq + 1,
            )
            .returning(folders.c.uidnext, folders.c.highest_modseq)
        )
    ).one()
    return int(row.uidnext) - uids, int(row.highest_modseq)


async def deliver(
    conn: AsyncConnection,
    *,
    account_ids: Iterable[int],
    blob_key: str,
    size: int,
    trace_header: bytes,
    internal_date: datetime,
) -> list[int]:
    """Add one copy of a message to the INBOX of each account, in the caller's transaction.

    Each account gets one copy even when listed twice; folders are updated in id order
    (so concurrent deliveries lock them in the same order and cannot deadlock), and each
    gets one new UID and one new mod-sequence. Nothing is written when an account is
    missing.

    Returns:
        The new message row ids, in ascending account id order.

    Raises:
        NotFound: an account (or its INBOX) does not exist.
    """
    copy = Copy(
        account_ids=tuple(account_ids),
        blob_key=blob_key,
        size=size,
        trace_header=trace_header,
        internal_date=internal_date,
    )
    # The key's blob lock (see courriel.storage.blobgc) before any row lock.
    await conn.run_sync(blobgc.share_keys, [blob_key])
    done = await conn.run_sync(lambda sync_conn: deliver_many(sync_conn, [copy]))
    outcome = done.outcomes[0]
    if outcome is not None:
        raise outcome
    return list(done.message_ids[0])


async def expunge(
    conn: AsyncConnection, *, account_id: int, folder_id: int, message_ids: Sequence[int]
) -> list[str]:
    """Delete messages of one folder and record the expunges.

    Returns:
        The blob keys the deleted rows referenced (for :func:`free_blobs` after commit).
    """
    await lock_account(conn, account_id)
    rows = (
        await conn.execute(
            select(messages.c.id, messages.c.uid, messages.c.blob_key).where(
                messages.c.folder_id == folder_id, messages.c.id.in_(list(message_ids))
            )
        )
    ).all()
    if not rows:
        return []
    _, modseq = await bump_modseq(conn, folder_id)
    await conn.execute(delete(messages).where(messages.c.id.in_([r.id for r in rows])))
    await record_changes(
        conn,
        account_id=account_id,
        folder_id=folder_id,
        kind="expunge",
        uids=[r.uid for r in rows],
        modseq=modseq,
    )
    return sorted({r.blob_key for r in rows})


async def free_blobs(
    db: Database,
    blobs: BlobStore,
    keys: Iterable[str],
    *,
    after_check: Callable[[Sequence[str]], Awaitable[None]] | None = None,
) -> None:
    """Delete the blobs among ``keys`` that no message or queued message references.

    Call it after the transaction that removed the rows committed. Keys are taken with
    their blob lock, references re-checked and the bodies deleted in one write
    transaction per batch, so a writer storing a row for the same body meanwhile is
    either seen or restores the body (see :mod:`courriel.storage.blobgc`). A key a writer
    holds right now is retried alone, waiting for it.

    Args:
        db: the database.
        blobs: the blob store.
        keys: candidate keys (duplicates are fine).
        after_check: test hook, awaited between the reference check and the delete
            (with the keys about to be deleted), the point where the race used to be.
    """
    unique = sorted(set(keys))
    busy: list[str] = []
    for i in range(0, len(unique), 500):  # keep IN lists of a sane size
        busy += await _free_batch(db, blobs, unique[i : i + 500], False, after_check)
    for key in busy:
        await _free_batch(db, blobs, [key], True, after_check)


async def _free_batch(
    db: Database,
    blobs: BlobStore,
    keys: list[str],
    wait: bool,
    after_check: Callable[[Sequence[str]], Awaitable[None]] | None,
) -> list[str]:
    """Free ``keys`` in one transaction; return the busy ones (only when not waiting)."""
    if not keys:
        return []
    async with db.write() as conn:
        if wait:
            await conn.run_sync(blobgc.lock_key, keys[0])
            held = keys
        else:
            held = await conn.run_sync(blobgc.try_lock_keys, keys)
        if held:
            # A new statement, after the locks: it sees every writer that committed.
            referenced = union(
                select(messages.c.blob_key).where(messages.c.blob_key.in_(held)),
                select(queue_messages.c.blob_key).where(queue_messages.c.blob_key.in_(held)),
            )
            used = set(await conn.scalars(referenced))
            unused = [key for key in held if key not in used]
            if after_check is not None:
                await after_check(unused)
            await blobgc.delete_bodies(conn, blobs, unused)
    return [key for key in keys if key not in held]
