"""Pieces shared by the IMAP side of the mail store: locks, folder lookups, change rows.

Invariants:
- A write transaction that changes an account's folders or messages calls
  :func:`lock_account` first, before it locks any folder row (the lock order of
  :mod:`courriel.mailstore.batch`), so change ids of an account ascend in commit order.
- A folder row is looked up with its account: a session can never reach another
  account's folder by guessing a folder id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import DateTime, Row, func, insert, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import NotFound
from courriel.mailstore.batch import LOCK_ACCOUNTS
from courriel.mailstore.flags import decode_flags
from courriel.mailstore.imapport import MessageMeta
from courriel.storage.models import changes, folders, messages, utcnow

__all__ = [
    "CHUNK",
    "META_COLUMNS",
    "META_WIDTH",
    "chunks",
    "folder_by_id",
    "folder_by_name",
    "last_change_id",
    "lock_account",
    "meta_of",
    "record_changes",
]

# Rows per IN list: far below the bound-parameter limits of SQLite and asyncpg.
CHUNK = 1000

# The columns of ``messages`` a MessageMeta is made of, in :func:`meta_of`'s order.
# internal_date is read as a plain DateTime: UTCDateTime's per-row Python hook costs
# more than the rest of a 10,000-message SELECT; :func:`meta_of` does its work.
META_COLUMNS = (
    messages.c.id,
    messages.c.uid,
    messages.c.flags,
    messages.c.modseq,
    messages.c.size,
    type_coerce(messages.c.internal_date, DateTime(timezone=True)).label("internal_date"),
    messages.c.blob_key,
)
META_WIDTH = len(META_COLUMNS)


def chunks(values: Sequence[int]) -> Iterable[list[int]]:
    """``values`` in lists of at most :data:`CHUNK`."""
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def meta_of(values: Sequence[Any]) -> MessageMeta:
    """A MessageMeta from the values of :data:`META_COLUMNS` (``meta_of(row[:META_WIDTH])``)."""
    message_id, uid, flags, modseq, size, internal_date, blob_key = values
    return MessageMeta(
        message_id=message_id,
        uid=uid,
        flags=decode_flags(flags),
        modseq=modseq,
        size=size,
        # Stored in UTC (naive on SQLite): the rule of storage.models.UTCDateTime.
        internal_date=(
            internal_date.replace(tzinfo=UTC)
            if internal_date.tzinfo is None
            else internal_date.astimezone(UTC)
        ),
        blob_key=blob_key,
    )


async def lock_account(conn: AsyncConnection, account_id: int) -> None:
    """Serialise this transaction with every other change writer of the account."""
    await conn.execute(LOCK_ACCOUNTS, {"accounts": [account_id]})


async def folder_by_name(conn: AsyncConnection, account_id: int, name: str) -> Row[Any]:
    """The folder row of ``name`` (already normalised). Raises NotFound."""
    row = (
        await conn.execute(
            select(folders).where(folders.c.account_id == account_id, folders.c.name == name)
        )
    ).first()
    if row is None:
        raise NotFound(f"no folder named {name!r}")
    return row


async def folder_by_id(conn: AsyncConnection, account_id: int, folder_id: int) -> Row[Any]:
    """The folder row of ``folder_id`` if it belongs to the account. Raises NotFound."""
    row = (
        await conn.execute(
            select(folders).where(folders.c.id == folder_id, folders.c.account_id == account_id)
        )
    ).first()
    if row is None:
        raise NotFound("the folder no longer exists")
    return row


async def record_changes(
    conn: AsyncConnection,
    *,
    account_id: int,
    folder_id: int | None,
    kind: str,
    uids: Iterable[int],
    modseq: int,
) -> None:
    """Write one ``changes`` row per UID (one multi-row INSERT)."""
    now = utcnow()
    rows = [
        {
            "account_id": account_id,
            "folder_id": folder_id,
            "kind": kind,
            "uid": uid,
            "modseq": modseq,
            "created_at": now,
        }
        for uid in uids
    ]
    if rows:
        await conn.execute(insert(changes), rows)


async def last_change_id(conn: AsyncConnection, account_id: int) -> int:
    """The account's newest change id in this transaction's view (0 when none)."""
    value = await conn.scalar(
        select(func.max(changes.c.id)).where(changes.c.account_id == account_id)
    )
    return int(value or 0)
