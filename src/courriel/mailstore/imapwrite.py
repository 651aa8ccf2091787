"""Message mutations of IMAP: STORE, EXPUNGE, COPY/MOVE and APPEND.

Every function here runs inside the caller's write transaction and:
- locks the account first (:func:`courriel.mailstore.imapcommon.lock_account`), then
  takes the folders' new mod-sequences (and UIDs) with
  :func:`courriel.mailstore.messages.bump_modseq`;
- writes one ``changes`` row per message it touched, with the folder's new modseq;
- works on UID sets in chunks of :data:`~courriel.mailstore.imapcommon.CHUNK` (one
  statement per chunk, never one per message).

The caller commits, then wakes the account's waiters and frees the blobs returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.mailstore.flags import encode_flags, has_flag
from courriel.mailstore.imapcommon import (
    chunks,
    folder_by_id,
    folder_by_name,
    last_change_id,
    lock_account,
    record_changes,
)
from courriel.mailstore.imapflags import store_flags_sync
from courriel.mailstore.imapport import AppendResult, CopyResult, StoreResult
from courriel.mailstore.messages import bump_modseq
from courriel.storage import blobgc
from courriel.storage.models import messages

__all__ = ["append_message", "copy_messages", "expunge_deleted", "store_flags"]

# A UID set is dense when it names at least one in _DENSE of the UIDs of its range.
_DENSE = 4


async def _rows(
    conn: AsyncConnection, folder_id: int, uids: Sequence[int], *columns: Any
) -> list[Any]:
    """The rows of ``uids`` in the folder (missing UIDs skipped), ascending UID.

    A dense set (``1:*`` from a client is the common case) is one range query, filtered
    here; a sparse one is IN lists of :data:`CHUNK` UIDs.
    """
    wanted = sorted(set(uids))
    if not wanted:
        return []
    in_folder = messages.c.folder_id == folder_id
    if len(wanted) * _DENSE >= wanted[-1] - wanted[0] + 1:
        query = select(*columns).where(in_folder, messages.c.uid.between(wanted[0], wanted[-1]))
        keep = set(wanted)
        rows = [row for row in (await conn.execute(query)).all() if int(row.uid) in keep]
    else:
        rows = []
        for part in chunks(wanted):
            query = select(*columns).where(in_folder, messages.c.uid.in_(part))
            rows.extend((await conn.execute(query)).all())
    rows.sort(key=lambda row: int(row.uid))
    return rows


async def store_flags(
    conn: AsyncConnection,
    account_id: int,
    folder_id: int,
    uids: Sequence[int],
    *,
    mode: Literal["+", "-", ""],
    flags: Sequence[str],
    unchanged_since: int | None,
) -> StoreResult:
    """STORE (RFC 9051 §6.4.6) with CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3).

    The work is :func:`courriel.mailstore.imapflags.store_flags_sync` (also what group
    commit runs on the writer thread).

    Raises:
        NotFound: the folder is gone.
    """
    return await conn.run_sync(
        lambda sync: store_flags_sync(
            sync,
            account_id,
            folder_id,
            uids,
            mode=mode,
            flags=flags,
            unchanged_since=unchanged_since,
        )
    )


async def expunge_deleted(
    conn: AsyncConnection, account_id: int, folder_id: int, uids: Sequence[int] | None
) -> tuple[list[int], list[str]]:
    """EXPUNGE / UID EXPUNGE (RFC 9051 §6.4.3, §6.4.9): remove messages flagged \\Deleted.

    Returns:
        The expunged UIDs (ascending) and the blob keys they referenced.

    Raises:
        NotFound: the folder is gone.
    """
    await lock_account(conn, account_id)
    await folder_by_id(conn, account_id, folder_id)
    deleted = has_flag(messages.c.flags, "\\Deleted")
    columns = (messages.c.id, messages.c.uid, messages.c.blob_key)
    if uids is None:
        query = select(*columns).where(messages.c.folder_id == folder_id, deleted)
        rows = sorted((await conn.execute(query)).all(), key=lambda row: int(row.uid))
    else:
        rows = [
            row
            for row in await _rows(conn, folder_id, uids, *columns, messages.c.flags)
            if "\\Deleted" in row.flags.split()
        ]
    if not rows:
        return [], []
    await _remove(conn, account_id, folder_id, rows)
    return [int(row.uid) for row in rows], sorted({row.blob_key for row in rows})


async def _remove(conn: AsyncConnection, account_id: int, folder_id: int, rows: list[Any]) -> None:
    """Delete message rows of a folder and record their expunges (one new modseq)."""
    _, modseq = await bump_modseq(conn, folder_id)
    for part in chunks([int(row.id) for row in rows]):
        await conn.execute(delete(messages).where(messages.c.id.in_(part)))
    await record_changes(
        conn,
        account_id=account_id,
        folder_id=folder_id,
        kind="expunge",
        uids=[int(row.uid) for row in rows],
        modseq=modseq,
    )


async def copy_messages(
    conn: AsyncConnection,
    account_id: int,
    folder_id: int,
    uids: Sequence[int],
    dest: str,
    *,
    move: bool,
) -> CopyResult:
    """COPY (RFC 9051 §6.4.7) or MOVE (RFC 6851 §3.3) to the folder named ``dest``.

    New rows share the source's blob and trace header and keep flags and internal
    date; new UIDs ascend in source-UID order (RFC 4315 COPYUID pairs them).

    Raises:
        NotFound: the source folder is gone, or ``dest`` does not exist.
    """
    await lock_account(conn, account_id)
    await folder_by_id(conn, account_id, folder_id)
    target = await folder_by_name(conn, account_id, dest)
    columns = (
        messages.c.id,
        messages.c.uid,
        messages.c.blob_key,
        messages.c.size,
        messages.c.internal_date,
        messages.c.flags,
        messages.c.trace_header,
    )
    rows = await _rows(conn, folder_id, uids, *columns)
    if rows:
        # The new rows share the sources' bodies: hold their blob locks, then read the
        # sources again, so a source that was expunged and freed meanwhile is not copied.
        await conn.run_sync(blobgc.share_keys, [row.blob_key for row in rows])
        rows = await _rows(conn, folder_id, uids, *columns)
    if not rows:
        return CopyResult(
            uidvalidity=int(target.uidvalidity), source_uids=[], dest_uids=[], last_change_id=0
        )
    first, modseq = await bump_modseq(conn, int(target.id), uids=len(rows))
    new_uids = list(range(first, first + len(rows)))
    await conn.execute(
        insert(messages),
        [
            {
                "folder_id": target.id,
                "uid": uid,
                "blob_key": row.blob_key,
                "size": row.size,
                "internal_date": row.internal_date,
                "flags": row.flags,
                "modseq": modseq,
                "trace_header": row.trace_header,
            }
            for uid, row in zip(new_uids, rows, strict=True)
        ],
    )
    await record_changes(
        conn,
        account_id=account_id,
        folder_id=int(target.id),
        kind="append",
        uids=new_uids,
        modseq=modseq,
    )
    if move:
        # RFC 6851 §3.3: the sources are expunged in the same transaction.
        await _remove(conn, account_id, folder_id, rows)
    return CopyResult(
        uidvalidity=int(target.uidvalidity),
        source_uids=[int(row.uid) for row in rows],
        dest_uids=new_uids,
        last_change_id=await last_change_id(conn, account_id),
    )


async def append_message(
    conn: AsyncConnection,
    account_id: int,
    name: str,
    *,
    blob_key: str,
    size: int,
    flags: Sequence[str],
    internal_date: datetime,
) -> AppendResult:
    """APPEND (RFC 9051 §6.3.12) of a stored body to the folder named ``name``.

    Raises:
        NotFound: no such folder.
    """
    await lock_account(conn, account_id)
    folder = await folder_by_name(conn, account_id, name)
    uid, modseq = await bump_modseq(conn, int(folder.id), uids=1)
    await conn.execute(
        insert(messages).values(
            folder_id=folder.id,
            uid=uid,
            blob_key=blob_key,
            size=size,
            internal_date=internal_date,
            flags=encode_flags(flags),
            modseq=modseq,
            trace_header=b"",
        )
    )
    await record_changes(
        conn,
        account_id=account_id,
        folder_id=int(folder.id),
        kind="append",
        uids=[uid],
        modseq=modseq,
    )
    return AppendResult(uidvalidity=int(folder.uidvalidity), uid=uid)
