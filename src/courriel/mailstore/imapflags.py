"""STORE (flag changes) as one synchronous function, for group commit on the writer thread.

:class:`courriel.mailstore.combine.WriteCombiner` runs the STOREs of many sessions in
one write transaction; on SQLite that transaction runs in one call on the database's
writer thread with the stdlib driver (``Database.run_write``), so each statement costs
no event-loop round trip. Hence this module is written against a synchronous
``Connection``; :func:`courriel.mailstore.imapwrite.store_flags` runs the same code on
an ``AsyncConnection`` through ``run_sync``.

Invariants (those of :mod:`courriel.mailstore.imapwrite`):
    * The account is locked first, then the folder's modseq is taken; one ``changes``
      row per changed message, with the folder's new modseq.
    * :class:`~courriel.errors.NotFound` (the folder is gone) is raised before anything
      is written, so a shared transaction can go on without this STORE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, func, insert, select, update

from courriel.errors import NotFound
from courriel.mailstore.batch import LOCK_ACCOUNTS
from courriel.mailstore.flags import apply_flags
from courriel.mailstore.imapcommon import CHUNK, META_COLUMNS, META_WIDTH, meta_of
from courriel.mailstore.imapport import MessageMeta, StoreResult
from courriel.storage.models import changes, folders, messages, utcnow

__all__ = ["store_flags_sync"]

_SET_FLAGS = (
    update(messages)
    .where(messages.c.id == bindparam("b_id"))
    .values(flags=bindparam("b_flags"), modseq=bindparam("b_modseq"))
)
_BUMP = (
    update(folders)
    .where(folders.c.id == bindparam("b_folder"))
    .values(highest_modseq=folders.c.highest_modseq + 1)
    .returning(folders.c.highest_modseq)
)
# A UID set is dense when it names at least one in _DENSE of the UIDs of its range.
_DENSE = 4


def _rows(conn: Connection, folder_id: int, uids: Sequence[int]) -> list[Any]:
    """The META_COLUMNS rows of ``uids`` in the folder (missing ones skipped), by UID."""
    wanted = sorted(set(uids))
    if not wanted:
        return []
    in_folder = messages.c.folder_id == folder_id
    if len(wanted) * _DENSE >= wanted[-1] - wanted[0] + 1:
        query = select(*META_COLUMNS).where(
            in_folder, messages.c.uid.between(wanted[0], wanted[-1])
        )
        keep = set(wanted)
        rows = [row for row in conn.execute(query).all() if int(row.uid) in keep]
    else:
        rows = []
        for start in range(0, len(wanted), CHUNK):
            part = wanted[start : start + CHUNK]
            rows.extend(
                conn.execute(select(*META_COLUMNS).where(in_folder, messages.c.uid.in_(part)))
            )
    rows.sort(key=lambda row: int(row.uid))
    return rows


def store_flags_sync(
    conn: Connection,
    account_id: int,
    folder_id: int,
    uids: Sequence[int],
    *,
    mode: Literal["+", "-", ""],
    flags: Sequence[str],
    unchanged_since: int | None,
) -> StoreResult:
    """STORE (RFC 9051 §6.4.6) with CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3).

    Raises:
        NotFound: the folder is gone (nothing written).
    """
    conn.execute(LOCK_ACCOUNTS, {"accounts": [account_id]})
    highest = conn.scalar(
        select(folders.c.highest_modseq).where(
            folders.c.id == folder_id, folders.c.account_id == account_id
        )
    )
    if highest is None:
        raise NotFound("the folder no longer exists")
    unchanged: list[MessageMeta] = []
    modified: list[int] = []
    todo: list[tuple[Any, str]] = []
    for row in _rows(conn, folder_id, uids):
        # RFC 7162 §3.1.3: a message changed since UNCHANGEDSINCE is left alone and
        # reported in the MODIFIED response code.
        if unchanged_since is not None and int(row.modseq) > unchanged_since:
            modified.append(int(row.uid))
            continue
        new = apply_flags(row.flags, mode, flags)
        if new == row.flags:
            unchanged.append(meta_of(row[:META_WIDTH]))
        else:
            todo.append((row, new))
    if not todo:
        return StoreResult(
            updated=[],
            unchanged=unchanged,
            modified=modified,
            highest_modseq=int(highest),
            last_change_id=0,
        )
    # RFC 7162 §3.1: every changed message takes the folder's new mod-sequence.
    modseq = int(conn.execute(_BUMP, {"b_folder": folder_id}).scalar_one())
    conn.execute(
        _SET_FLAGS, [{"b_id": row.id, "b_flags": new, "b_modseq": modseq} for row, new in todo]
    )
    now = utcnow()
    conn.execute(
        insert(changes),
        [
            {
                "account_id": account_id,
                "folder_id": folder_id,
                "kind": "flags",
                "uid": int(row.uid),
                "modseq": modseq,
                "created_at": now,
            }
            for row, _ in todo
        ],
    )
    last = conn.scalar(select(func.max(changes.c.id)).where(changes.c.account_id == account_id))
    updated = [
        meta_of((row.id, row.uid, new, modseq, row.size, row.internal_date, row.blob_key))
        for row, new in todo
    ]
    return StoreResult(
        updated=updated,
        unchanged=unchanged,
        modified=modified,
        highest_modseq=modseq,
        last_change_id=int(last or 0),
    )
