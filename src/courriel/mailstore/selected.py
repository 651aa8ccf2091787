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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import NotFound
from courriel.mailstore.imapcommon import META_COLUMNS, META_WIDTH, last_change_id, meta_of
from courriel.mailstore.imapport import FolderDelta, FolderSnapshot, MessageMeta
from courriel.mailstore.mirror import FolderMirror, MirrorEntry, advance, keywords_of
from courriel.mailstore.prune import PRUNED
from courriel.storage.db import Database
from courriel.storage.models import changes, folders, messages

__all__ = [
    "FolderSince",
    "claim_recent",
    "expunged_since",
    "mirrored_snapshot",
    "read_delta",
    "read_since",
    "read_snapshot",
]


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


def _delta_query(*extra: Any) -> Any:
    """The folder row joined with its change rows after ``b_after`` and their messages.

    Built once (module constants below) with bound parameters ``b_account`` and
    ``b_after``: every IMAP command polls for changes, and building the statement
    cost more than running it.
    """
    after: Any = bindparam("b_after")
    return (
        select(
            *META_COLUMNS,
            *_FOLDER_COLUMNS,
            select(func.max(changes.c.id))
            .where(changes.c.account_id == bindparam("b_account"))
            .scalar_subquery()
            .label("f_last"),
            *extra,
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
        .where(folders.c.account_id == bindparam("b_account"))
    )


_DELTA = _delta_query().where(folders.c.id == bindparam("b_folder"))
# A CREATE, DELETE or RENAME of the account after the position (a change without folder).
_FOLDERS_CHANGED = (
    select(changes.c.id)
    .where(
        changes.c.account_id == bindparam("b_account"),
        changes.c.id > bindparam("b_after"),
        changes.c.folder_id.is_(None),
    )
    .limit(1)
    .scalar_subquery()
    .label("f_moved")
)
_SINCE = _delta_query(_FOLDERS_CHANGED).where(folders.c.name == bindparam("b_name"))


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
    snapshot = FolderSnapshot(
        folder_id=int(first.f_id),
        name=first.f_name,
        uidvalidity=int(first.f_uidvalidity),
        uidnext=int(first.f_uidnext),
        highest_modseq=int(first.f_modseq),
        messages=metas,
        recent_from=int(first.f_uidnext),
        # Keywords compare case-insensitively (RFC 9051 §2.3.2): one spelling each.
        keywords=keywords_of(metas),
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
    params = {"b_account": account_id, "b_after": after, "b_folder": folder_id}
    rows = (await conn.execute(_DELTA, params)).all()
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
        # Changes after the position were pruned: the delta is incomplete, so the
        # session is told the folder is gone and must select it again (a full read).
        gone=_pruned(rows),
    )
    return delta, int(first.f_recent)


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderSince:
    """A folder found by name and its changes after a position (:func:`read_since`)."""

    folder_id: int
    name: str
    uidvalidity: int
    unclaimed: int  # the folder's first unclaimed \\Recent UID
    folders_changed: bool  # a CREATE, DELETE or RENAME of the account after the position
    delta: FolderDelta


async def read_since(conn: AsyncConnection, account_id: int, name: str, after: int) -> FolderSince:
    """The folder named ``name`` and what changed in it after change id ``after``.

    One statement, like :func:`read_delta`, for a folder found by name; it also says
    whether any folder of the account was created, deleted or renamed since (a
    ``changes`` row without folder), so the mirror knows when not to trust a delta.

    Raises:
        NotFound: no such folder.
    """
    params = {"b_account": account_id, "b_after": after, "b_name": name}
    rows = (await conn.execute(_SINCE, params)).all()
    if not rows:
        raise NotFound(f"no folder named {name!r}")
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
    return FolderSince(
        folder_id=int(first.f_id),
        name=first.f_name,
        uidvalidity=int(first.f_uidvalidity),
        unclaimed=int(first.f_recent),
        # A pruned feed after the position makes the delta incomplete, like a rename.
        folders_changed=first.f_moved is not None or _pruned(rows),
        delta=delta,
    )


async def mirrored_snapshot(
    conn: AsyncConnection, mirror: FolderMirror, account_id: int, name: str
) -> tuple[FolderSnapshot, int]:
    """:func:`read_snapshot` through the mirror: a delta read when its entry can be used.

    The entry is brought up to date from the folder's change rows after its position
    (see :mod:`courriel.mailstore.mirror` for when it can be); otherwise, or when
    there is none, the folder is read in full and mirrored.

    Returns and raises as :func:`read_snapshot`.
    """
    entry = mirror.get(account_id, name)
    if entry is not None:
        since = await read_since(conn, account_id, name, entry.position)
        usable = (
            since.folder_id == entry.folder_id
            and since.uidvalidity == entry.uidvalidity
            and not since.folders_changed
        )
        fresh = advance(entry, since.delta) if usable else None
        if fresh is not None:
            mirror.delta_reads += 1
            mirror.put(fresh)
            snapshot = FolderSnapshot(
                folder_id=fresh.folder_id,
                name=since.name,
                uidvalidity=fresh.uidvalidity,
                uidnext=since.delta.uidnext,
                highest_modseq=since.delta.highest_modseq,
                messages=list(fresh.messages),
                recent_from=since.delta.uidnext,
                keywords=fresh.keywords,
                last_change_id=fresh.position,
            )
            return snapshot, since.unclaimed
        mirror.discard(account_id, name)
    snapshot, unclaimed = await read_snapshot(conn, account_id, name)
    mirror.full_reads += 1
    mirror.put(
        MirrorEntry(
            account_id=account_id,
            folder_id=snapshot.folder_id,
            name=name,
            uidvalidity=snapshot.uidvalidity,
            position=snapshot.last_change_id,
            uids=tuple(m.uid for m in snapshot.messages),
            messages=tuple(snapshot.messages),
            keywords=snapshot.keywords,
        )
    )
    return snapshot, unclaimed


def _pruned(rows: Sequence[Any]) -> bool:
    """Whether the feed after the position was pruned (:mod:`courriel.mailstore.prune`)."""
    return any(row.kind == PRUNED for row in rows)


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


async def expunged_since(
    conn: AsyncConnection, account_id: int, folder_id: int, modseq: int
) -> list[int]:
    """UIDs of the folder expunged with a modseq above ``modseq``, ascending, distinct.

    RFC 7162 §3.2.5, §3.2.6 (QRESYNC): ``changes`` keeps every expunge with its modseq
    since the pruning horizon (:mod:`courriel.mailstore.prune`). When ``modseq`` is
    older than the horizon (the folder's ``pruned`` row carries the newest modseq
    pruned), expunges may be missing, so every UID below UIDNEXT that is not in the
    folder is returned: RFC 7162 §3.2.5.2 allows VANISHED (EARLIER) to name UIDs the
    server cannot tell about. The (folder_id, id) index narrows the scan to the folder.
    """
    horizon = await conn.scalar(
        select(func.max(changes.c.modseq)).where(
            changes.c.folder_id == folder_id, changes.c.kind == PRUNED
        )
    )
    if horizon is not None and int(horizon) > modseq:
        return await _absent_uids(conn, folder_id)
    query = (
        select(changes.c.uid)
        .where(
            changes.c.folder_id == folder_id,
            changes.c.account_id == account_id,
            changes.c.kind == "expunge",
            changes.c.modseq > modseq,
        )
        .distinct()
        .order_by(changes.c.uid)
    )
    return [int(uid) for uid in await conn.scalars(query)]


async def _absent_uids(conn: AsyncConnection, folder_id: int) -> list[int]:
    """Every UID below the folder's UIDNEXT that no message of the folder has."""
    uidnext = await conn.scalar(select(folders.c.uidnext).where(folders.c.id == folder_id))
    present = set(
        await conn.scalars(select(messages.c.uid).where(messages.c.folder_id == folder_id))
    )
    return [uid for uid in range(1, int(uidnext or 1)) if uid not in present]
