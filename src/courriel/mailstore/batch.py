"""Delivering many messages in one transaction with a handful of statements (group commit).

:func:`deliver_many` is what the SMTP group committer calls: for a batch of accepted
messages it reads every INBOX id at once, takes each folder's new UIDs and one new
mod-sequence with one ``UPDATE … RETURNING`` per folder, and inserts every message and
change-feed row with one multi-row ``INSERT`` each. The per-message cost is then a few
rows, not a few round trips.

Invariants (as in :mod:`courriel.mailstore.messages`): UIDs ascend strictly per folder
and are never reused; folders are updated in id order so concurrent batches cannot
deadlock; a message whose account vanished fails alone (it gets no row anywhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from courriel.errors import NotFound
from courriel.storage.models import changes, folders, messages, utcnow

__all__ = ["Copy", "deliver_many"]

INBOX = "INBOX"

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


def deliver_many(conn: Connection, copies: Sequence[Copy]) -> list[NotFound | None]:
    """Add every copy to its accounts' INBOXes inside the caller's (synchronous) transaction.

    Returns:
        One outcome per copy, in order: None when stored, NotFound when one of its
        accounts no longer exists (then nothing of that copy is stored).
    """
    wanted = sorted({a for copy in copies for a in copy.account_ids})
    if not wanted:
        return [None] * len(copies)
    rows = conn.execute(_INBOXES, {"accounts": wanted})
    inbox = {int(r.account_id): int(r.id) for r in rows}
    outcomes: list[NotFound | None] = [
        None if all(a in inbox for a in copy.account_ids) else NotFound("account vanished")
        for copy in copies
    ]
    # Per folder (in id order), the copies it receives, in arrival order.
    per_folder: dict[int, list[tuple[int, Copy]]] = {}
    for copy, outcome in zip(copies, outcomes, strict=True):
        if outcome is None:
            for account_id in sorted(set(copy.account_ids)):
                per_folder.setdefault(inbox[account_id], []).append((account_id, copy))
    message_rows: list[dict[str, object]] = []
    change_rows: list[dict[str, object]] = []
    now = utcnow()
    for folder_id in sorted(per_folder):
        items = per_folder[folder_id]
        taken = (conn.execute(_TAKE, {"folder": folder_id, "count": len(items)})).one()
        first_uid, modseq = int(taken.uidnext) - len(items), int(taken.highest_modseq)
        for offset, (account_id, copy) in enumerate(items):
            uid = first_uid + offset
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
    if message_rows:
        conn.execute(insert(messages), message_rows)
        conn.execute(insert(changes), change_rows)
    return outcomes
