"""Pruning the change feed (``changes`` rows) older than the retention.

Every append, flag change, expunge and folder change writes a ``changes`` row; they
would accumulate forever. :func:`prune_changes` deletes the rows older than
``imap.changes_retention`` but keeps, per folder (and per account for the folder-less
"folders" rows), one marker: the newest pruned row, rewritten to kind ``pruned`` with
the highest mod-sequence pruned. It keeps its id, so:

- a session or mirror whose feed position is below a marker's id missed pruned rows:
  ``selected.read_delta`` reports the folder gone (the session selects it again, a
  full read) and ``selected.read_since`` makes the mirror read the folder in full;
- QRESYNC (RFC 7162 §3.2.5.2): ``selected.expunged_since`` with a mod-sequence below the
  marker's answers every UID below UIDNEXT that is not in the folder.

Invariants: ``max(changes.id)`` per account never goes down (the newest pruned row
stays as the marker), and a marker's modseq is the newest modseq of anything pruned in
its folder. Deleting a folder or an account deletes its markers (ON DELETE CASCADE).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.storage.db import Database
from courriel.storage.models import changes, utcnow

__all__ = ["PRUNED", "prune_changes"]

PRUNED = "pruned"  # the kind of a marker row


async def prune_changes(db: Database, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete the change rows created more than ``older_than`` ago, leaving markers.

    Meant for a periodic maintenance task of ``courriel serve``; safe to run on several
    nodes at once (each folder is pruned in one transaction; a second run finds
    nothing older than the horizon but the marker).

    Args:
        db: the database.
        older_than: the retention (``imap.changes_retention``).
        now: the current time (injected by tests).

    Returns:
        How many rows were deleted.
    """
    horizon = (now or utcnow()) - older_than
    async with db.read() as conn:
        groups = (
            await conn.execute(
                select(changes.c.account_id, changes.c.folder_id)
                .where(changes.c.created_at < horizon)
                .group_by(changes.c.account_id, changes.c.folder_id)
                .having(func.count() > 1)
            )
        ).all()
    deleted = 0
    for group in groups:
        async with db.write() as conn:
            deleted += await _prune_group(conn, int(group.account_id), group.folder_id, horizon)
    return deleted


async def _prune_group(
    conn: AsyncConnection, account_id: int, folder_id: int | None, horizon: datetime
) -> int:
    """Prune one folder's (or the account's folder-less) rows before ``horizon``."""
    same = and_(
        changes.c.account_id == account_id,
        changes.c.folder_id.is_(None) if folder_id is None else changes.c.folder_id == folder_id,
        changes.c.created_at < horizon,
    )
    newest = (
        await conn.execute(select(func.max(changes.c.id), func.max(changes.c.modseq)).where(same))
    ).one()
    if newest[0] is None:
        return 0  # the folder went away meanwhile
    marker, modseq = int(newest[0]), int(newest[1])
    result = await conn.execute(delete(changes).where(same, changes.c.id < marker))
    await conn.execute(
        update(changes).where(changes.c.id == marker).values(kind=PRUNED, modseq=modseq)
    )
    return int(result.rowcount or 0)
