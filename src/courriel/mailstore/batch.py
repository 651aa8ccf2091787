"""Delivering many messages in one transaction with a handful of statements (group commit).

:func:`deliver_many` is what the SMTP group committer calls: for a batch of accepted
messages it reads every INBOX id at once, takes each folder's new UIDs and one new
mod-sequence with one ``UPDATE … RETURNING`` per folder, and inserts every message and
change-feed row with one multi-row ``INSERT`` each. The per-message cost is then a few
rows, not a few round trips. :func:`courriel.mailstore.messages.deliver` is the same
delivery for one message.

Invariants (as in :mod:`courriel.mailstore.messages`): UIDs ascend strictly per folder
and are never reused; folders are updated in id order so concurrent batches cannot
deadlock; a message whose account vanished fails alone (it gets no row anywhere); every
folder that receives messages gets one new mod-sequence per batch, shared by all the
messages appended to it in that batch (RFC 7162 §3.1.2 only asks that it grow).

Change-feed order: every transaction that writes ``changes`` rows of an account first
locks the account's row (:data:`LOCK_ACCOUNTS`, accounts in id order, before any folder).
So the change ids of one account are taken in commit order, and a reader that saw change
id N has seen every change of that account below N. On PostgreSQL ids come from a
sequence at insert time; without the lock a transaction holding id N could commit after
one holding N + 1 and a session positioned at N + 1 would miss it. (SQLite has one writer.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from courriel.errors import NotFound
from courriel.storage.models import accounts, changes, folders, messages, utcnow

__all__ = ["INBOX", "LOCK_ACCOUNTS", "Copy", "Delivered", "deliver_many"]

INBOX = "INBOX"

# FOR NO KEY UPDATE on PostgreSQL: serialises change writers of an account without
# blocking inserts that merely reference the account (foreign key checks).
LOCK_ACCOUNTS = (
    select(accounts.c.id)
    .where(accounts.c.id.in_(bindparam("accounts", expanding=True)))
    .order_by(accounts.c.id)
    .with_for_update(key_share=True)
)

_INBOXES = select(folders.c.account_id, folders.c.id).where(
    folders.c.account_id.in_(bindparam("accounts", expanding=True)), folders.c.name == INBOX
)
_TAKE = (
    update(folders)
    .where(folders.c.id == bindparam("folder"))
    .values(
        uidnext=folders.c.uidnext + bindparam("count"),
        highest_modseq=folders.c.highest_modseq + 1,
    )
    .returning(folders.c.uidnext, folders.c.highest_modseq)
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy:
    """One accepted message for one or more local mailboxes."""

    account_ids: tuple[int, ...]
    blob_key: str
    size: int  # trace header + body octets
    trace_header: bytes
    internal_date: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivered:
    """What :func:`deliver_many` did, one entry per copy in the order given.

    ``outcomes[i]`` is None when copy ``i`` was stored, NotFound when one of its accounts
    no longer exists (then nothing of that copy is stored). ``message_ids[i]`` holds the
    new message row ids of copy ``i``, one per distinct account in ascending account id
    order (empty when it was not stored).
    """

    outcomes: list[NotFound | None]
    message_ids: list[tuple[int, ...]]


_Item = tuple[int, int, Copy]  # (index of the copy, account id, copy)
_Row = dict[str, object]
_Placed = dict[tuple[int, int], tuple[int, int]]  # (folder id, uid) -> (copy index, account id)


def deliver_many(conn: Connection, copies: Sequence[Copy]) -> Delivered:
    """Add every copy to its accounts' INBOXes inside the caller's (synchronous) transaction.

    Each copy reaches each of its accounts once, even when an account is listed twice.

    Returns:
        The outcome and the new message row ids of every copy (see :class:`Delivered`).
    """
    wanted = sorted({a for copy in copies for a in copy.account_ids})
    if not wanted:
        return Delivered(outcomes=[None] * len(copies), message_ids=[()] * len(copies))
    conn.execute(LOCK_ACCOUNTS, {"accounts": wanted})
    rows = conn.execute(_INBOXES, {"accounts": wanted})
    inbox = {int(r.account_id): int(r.id) for r in rows}
    outcomes: list[NotFound | None] = [
        None if all(a in inbox for a in copy.account_ids) else NotFound("account vanished")
        for copy in copies
    ]
    # Per folder (in id order), the copies it receives, in arrival order.
    per_folder: dict[int, list[_Item]] = {}
    for index, (copy, outcome) in enumerate(zip(copies, outcomes, strict=True)):
        if outcome is None:
            for account_id in sorted(set(copy.account_ids)):
                per_folder.setdefault(inbox[account_id], []).append((index, account_id, copy))
    message_rows, change_rows, placed = _take_and_build(conn, per_folder)
    ids: list[dict[int, int]] = [{} for _ in copies]
    if message_rows:
        returning = insert(messages).returning(messages.c.id, messages.c.folder_id, messages.c.uid)
        for row in conn.execute(returning, message_rows):
            index, account_id = placed[int(row.folder_id), int(row.uid)]
            ids[index][account_id] = int(row.id)
        conn.execute(insert(changes), change_rows)
    message_ids = [tuple(by_account[a] for a in sorted(by_account)) for by_account in ids]
    return Delivered(outcomes=outcomes, message_ids=message_ids)


def _take_and_build(
    conn: Connection, per_folder: dict[int, list[_Item]]
) -> tuple[list[_Row], list[_Row], _Placed]:
    """Take UIDs and one mod-sequence per folder (in id order) and build the new rows.

    Returns:
        The ``messages`` rows, the ``changes`` rows, and for each new row's
        ``(folder id, uid)`` the ``(copy index, account id)`` it belongs to.
    """
    # (folder, uid) names a row: where each new row belongs, to hand back its id.
    placed: _Placed = {}
    message_rows: list[_Row] = []
    change_rows: list[_Row] = []
    now = utcnow()
    for folder_id in sorted(per_folder):
        items = per_folder[folder_id]
        taken = (conn.execute(_TAKE, {"folder": folder_id, "count": len(items)})).one()
        first_uid, modseq = int(taken.uidnext) - len(items), int(taken.highest_modseq)
        for offset, (index, account_id, copy) in enumerate(items):
            uid = first_uid + offset
            placed[folder_id, uid] = (index, account_id)
            message_rows.append(
                {
                    "folder_id": folder_id,
                    "uid": uid,
                    "blob_key": copy.blob_key,
                    "size": copy.size,
                    "internal_date": copy.internal_date,
                    "flags": "",
                    "modseq": modseq,
                    "trace_header": copy.trace_header,
                }
            )
            change_rows.append(
                {
                    "account_id": account_id,
                    "folder_id": folder_id,
                    "kind": "append",
                    "uid": uid,
                    "modseq": modseq,
                    "created_at": now,
                }
            )
    return message_rows, change_rows, placed
