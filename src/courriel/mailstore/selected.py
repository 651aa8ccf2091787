"""A selected IMAP folder: the SELECT/EXAMINE snapshot, \\Recent claims, change deltas.

Invariants:
- A snapshot and a delta are each read by ONE SQL statement, so they are consistent on
  PostgreSQL too (READ COMMITTED gives each statement, not each transaction, a snapshot):
  the messages, the folder counters and the account's change position agree.
- \\Recent (RFC 3501 §2.3.2): ``folders.recent_uid`` is the first UID nobody claimed.
  A claim moves it up to the UIDNEXT the claimer saw, under the folder's row lock (one
  writer on SQLite), so each UID is \\Recent in at most one session. EXAMINE, STATUS and
  read-only sessions never claim.
- A delta is cheap when nothing changed: one indexed lookup of the folder row, the
  account's newest change id, and no ``changes`` row after the position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import NotFound
from courriel.mailstore.flags import SYSTEM_FLAGS
from courriel.mailstore.imapcommon import META_COLUMNS, META_WIDTH, last_change_id, meta_of
from courriel.mailstore.imapport import FolderDelta, FolderSnapshot, MessageMeta
from courriel.storage.db import Database
from courriel.storage.models import changes, folders, messages

__all__ = ["claim_recent", "read_delta", "read_snapshot"]

_SYSTEM = {flag.casefold() for flag in SYSTEM_FLAGS}


def _last_change(account_id: int) -> Any:
    return (
        select(func.max(changes.c.id))
        .where(changes.c.account_id == account_id)
        .scalar_subquery()
        .label("f_last")
    )


_FOLDER_COLUMNS = (
    folders.c.id.label("f_id"),
    folders.c.name.label("f_name"),
    folders.c.uidvalidity.label("f_uidvalidity"),
    folders.c.uidnext.label("f_uidnext"),
    folders.c.highest_modseq.label("f_modseq"),
    folders.c.recent_uid.label("f_recent"),
)


async def read_snapshot(
    conn: AsyncConnection, account_id: int, name: str
) -> tuple[FolderSnapshot, int]:
    """The folder and all its messages (ascending UID), in one statement.

    Returns:
        The snapshot (``recent_from`` = UIDNEXT: nothing claimed yet) and the folder's
        first unclaimed \\Recent UID.

    Raises:
        NotFound: no such folder.
    """
    query = (
        select(*META_COLUMNS, *_FOLDER_COLUMNS, _last_change(account_id))
        .select_from(folders.outerjoin(messages, messages.c.folder_id == folders.c.id))
        .where(folders.c.account_id == account_id, folders.c.name == name)
        .order_by(messages.c.uid)
    )
    rows = (await conn.execute(query)).all()
    if not rows:
        raise NotFound(f"no folder named {name!r}")
    first = rows[0]
    # Positional unpacking: attribute access by name costs more over 10,000 rows.
    metas = [meta_of(row[:META_WIDTH]) for row in rows if row[0] is not None]
    # Keywords compare case-insensitively (RFC 9051 §2.3.2): one spelling each.
    keywords: dict[str, str] = {}
    for flags in {m.flags for m in metas}:
        for flag in flags:
            if flag.casefold() not in _SYSTEM:
                keywords.setdefault(flag.casefold(), flag)
    snapshot = FolderSnapshot(
        folder_id=int(first.f_id),
        name=first.f_name,
        uidvalidity=int(first.f_uidvalidity),
        uidnext=int(first.f_uidnext),
        highest_modseq=int(first.f_modseq),
        messages=metas,
        recent_from=int(first.f_uidnext),
        keywords=frozenset(keywords.values()),
        last_change_id=int(first.f_last or 0),
    )
    return snapshot, int(first.f_recent)


async def claim_recent(db: Database, folder_id: int, upto: int) -> int | None:
    """Claim the unclaimed UIDs below ``upto`` as \\Recent for the caller.

    Returns:
        The first claimed UID, or None when another session claimed them first.
    """
    async with db.write() as conn:
        # The row lock (PostgreSQL; SQLite has one writer) makes the claim exclusive.
        mark = await conn.scalar(
            select(folders.c.recent_uid).where(folders.c.id == folder_id).with_for_update()
        )
        if mark is None or int(mark) >= upto:
            return None
        await conn.execute(update(folders).where(folders.c.id == folder_id).values(recent_uid=upto))
    return int(mark)


async def read_delta(
    conn: AsyncConnection, account_id: int, folder_id: int, after: int
) -> tuple[FolderDelta, int]:
    """What changed in the folder after change id ``after``, in one statement.

    Returns:
        The delta (``recent_from`` None) and the folder's first unclaimed \\Recent UID
        (0 when the folder is gone).
    """
    query = (
        select(
            *META_COLUMNS,
            *_FOLDER_COLUMNS,
            _last_change(account_id),
            changes.c.kind,
            changes.c.uid.label("c_uid"),
        )
        .select_from(
            folders.outerjoin(
                changes, and_(changes.c.folder_id == folders.c.id, changes.c.id > after)
            ).outerjoin(
                messages,
                and_(messages.c.folder_id == folders.c.id, messages.c.uid == changes.c.uid),
            )
        )
        .where(folders.c.id == folder_id, folders.c.account_id == account_id)
    )
    rows = (await conn.execute(query)).all()
    if not rows:
        latest = await last_change_id(conn, account_id)
        gone = FolderDelta(
            added=[],
            updated=[],
            expunged=[],
            uidnext=0,
            highest_modseq=0,
            last_change_id=max(latest, after),
            gone=True,
        )
        return gone, 0
    first = rows[0]
    added, updated, expunged = _sort_changes(rows)
    delta = FolderDelta(
        added=added,
        updated=updated,
        expunged=expunged,
        uidnext=int(first.f_uidnext),
        highest_modseq=int(first.f_modseq),
        last_change_id=max(int(first.f_last or 0), after),
    )
    return delta, int(first.f_recent)


def _sort_changes(rows: Sequence[Any]) -> tuple[list[MessageMeta], list[MessageMeta], list[int]]:
    """Split change rows (joined with the messages' current state) into the delta lists."""
    kinds: dict[str, set[int]] = {"append": set(), "expunge": set(), "flags": set()}
    current: dict[int, MessageMeta] = {}
    for row in rows:
        if row.kind is None or row.kind not in kinds:
            continue
        uid = int(row.c_uid)
        kinds[row.kind].add(uid)
        if row.id is not None and uid not in current:
            current[uid] = meta_of(row[:META_WIDTH])
    appended, gone = kinds["append"], kinds["expunge"]
    # A message appended and expunged again since the position is in neither list.
    added = [current[uid] for uid in sorted(appended - gone) if uid in current]
    changed = kinds["flags"] - appended - gone
    updated = [current[uid] for uid in sorted(changed) if uid in current]
    return added, updated, sorted(gone - appended)
