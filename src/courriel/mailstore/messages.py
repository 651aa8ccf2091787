"""Messages in folders: delivery into INBOX, expunge, and freeing unreferenced blobs.

Invariants:
- A UID is taken from ``folders.uidnext`` by an ``UPDATE … RETURNING`` in the caller's
  transaction, so UIDs ascend strictly per folder and are never reused, even after an
  expunge (RFC 9051 §2.3.1.1); the row lock of that UPDATE serialises concurrent
  deliveries to one folder on PostgreSQL, the write lock does on SQLite.
- Every change bumps ``folders.highest_modseq`` and writes a ``changes`` row in the same
  transaction (RFC 7162 §3.1.2: the mod-sequence grows with every change).
- A blob is deleted only after the transaction that dropped its last reference committed.
  TODO: a delivery of the very same body racing with that delete can lose the body;
  a grace period (or reference rows) closes that window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import NotFound
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import changes, folders, messages, queue_messages, utcnow

__all__ = ["INBOX", "bump_modseq", "deliver", "expunge", "free_blobs"]

INBOX = "INBOX"


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


async def _inbox_id(conn: AsyncConnection, account_id: int) -> int:
    folder_id = await conn.scalar(
        select(folders.c.id).where(folders.c.account_id == account_id, folders.c.name == INBOX)
    )
    if folder_id is None:
        raise NotFound(f"account {account_id} has no INBOX")
    return int(folder_id)


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

    Accounts are handled in id order (so concurrent deliveries lock folders in the same
    order and cannot deadlock) and each account gets one copy even when listed twice.

    Returns:
        The new message row ids, in ascending account id order.

    Raises:
        NotFound: an account (or its INBOX) does not exist.
    """
    ids: list[int] = []
    now = utcnow()
    for account_id in sorted(set(account_ids)):
        folder_id = await _inbox_id(conn, account_id)
        uid, modseq = await bump_modseq(conn, folder_id, uids=1)
        message_id = await conn.scalar(
            insert(messages)
            .values(
                folder_id=folder_id,
                uid=uid,
                blob_key=blob_key,
                size=size,
                internal_date=internal_date,
                flags="",
                modseq=modseq,
                trace_header=trace_header,
            )
            .returning(messages.c.id)
        )
        await conn.execute(
            insert(changes).values(
                account_id=account_id,
                folder_id=folder_id,
                kind="append",
                uid=uid,
                modseq=modseq,
                created_at=now,
            )
        )
        ids.append(int(message_id or 0))
    return ids


async def expunge(
    conn: AsyncConnection, *, account_id: int, folder_id: int, message_ids: Sequence[int]
) -> list[str]:
    """Delete messages of one folder and record the expunges.

    Returns:
        The blob keys the deleted rows referenced (for :func:`free_blobs` after commit).
    """
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
    now = utcnow()
    await conn.execute(
        insert(changes),
        [
            {
                "account_id": account_id,
                "folder_id": folder_id,
                "kind": "expunge",
                "uid": r.uid,
                "modseq": modseq,
                "created_at": now,
            }
            for r in rows
        ],
    )
    return sorted({r.blob_key for r in rows})


async def free_blobs(db: Database, blobs: BlobStore, keys: Iterable[str]) -> None:
    """Delete the blobs among ``keys`` that no message or queued message references."""
    for key in sorted(set(keys)):
        async with db.read() as conn:
            used = await conn.scalar(
                select(
                    exists().where(messages.c.blob_key == key)
                    | exists().where(queue_messages.c.blob_key == key)
                )
            )
        if not used:
            await blobs.delete(key)
