"""The outbound queue: durable enqueue and listing (delivery itself is the worker's job).

A queued message is one ``queue_messages`` row (envelope sender, blob key, trace header)
and one ``queue_recipients`` row per recipient with its own state, so each recipient is
retried, delivered or bounced on its own, every change in one transaction.

Invariant: :func:`enqueue` runs inside the caller's write transaction, together with
any local copies of the same message, so a crash leaves either all of it or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any, Literal, get_args

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.storage.db import Database
from courriel.storage.models import queue_messages, queue_recipients, utcnow

__all__ = [
    "Priority",
    "QueueEntry",
    "QueueRecipient",
    "enqueue",
    "enqueue_sync",
    "list_queue",
    "queue_entry",
]

Priority = Literal["transactional", "bulk"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRecipient:
    """One recipient of a queued message and its delivery state."""

    id: int
    recipient: str
    status: str  # "queued" | "delivered" | "failed"
    attempts: int  # delivery attempts made so far
    next_attempt_at: datetime  # when the worker may try again (UTC)
    last_reply: str  # the last SMTP reply or error, "" before the first attempt


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry:
    """A queued message with all its recipients."""

    id: int
    sender: str  # "" for the null reverse-path (bounces)
    blob_key: str
    size: int  # octets of trace header + body
    priority: str  # "transactional" | "bulk"
    created_at: datetime
    recipients: tuple[QueueRecipient, ...]


def enqueue_sync(
    conn: Connection,
    *,
    sender: str,
    recipients: Sequence[str],
    blob_key: str,
    size: int,
    trace_header: bytes,
    priority: str = "transactional",
    smtputf8: bool = False,
    eight_bit: bool = False,
) -> int:
    """Queue a message for outbound delivery inside the caller's (synchronous) transaction.

    ``smtputf8`` / ``eight_bit`` say what the message needs from the receiving server
    (RFC 6531 SMTPUTF8, RFC 6152 8BITMIME); the worker passes them to the SMTP client.

    Returns:
        The queue message id.

    Raises:
        InvalidInput: no recipients, or an unknown priority.
    """
    if priority not in get_args(Priority):
        raise InvalidInput(f"unknown queue priority {priority!r}")
    unique = list(dict.fromkeys(recipients))
    if not unique:
        raise InvalidInput("a queued message needs at least one recipient")
    now = utcnow()
    message_id = conn.scalar(
        insert(queue_messages)
        .values(
            sender=sender,
            blob_key=blob_key,
            size=size,
            trace_header=trace_header,
            priority=priority,
            created_at=now,
            smtputf8=smtputf8,
            eight_bit=eight_bit,
        )
        .returning(queue_messages.c.id)
    )
    conn.execute(
        insert(queue_recipients),
        [
            {
                "message_id": message_id,
                "recipient": rcpt,
                "status": "queued",
                "attempts": 0,
                "next_attempt_at": now,
                "last_reply": "",
            }
            for rcpt in unique
        ],
    )
    return int(message_id or 0)


async def enqueue(
    conn: AsyncConnection,
    *,
    sender: str,
    recipients: Sequence[str],
    blob_key: str,
    size: int,
    trace_header: bytes,
    priority: str = "transactional",
    smtputf8: bool = False,
    eight_bit: bool = False,
) -> int:
    """Queue a message inside the caller's async transaction (see :func:`enqueue_sync`)."""
    return await conn.run_sync(
        lambda sync_conn: enqueue_sync(
            sync_conn,
            sender=sender,
            recipients=recipients,
            blob_key=blob_key,
            size=size,
            trace_header=trace_header,
            priority=priority,
            smtputf8=smtputf8,
            eight_bit=eight_bit,
        )
    )


async def list_queue(db: Database) -> list[QueueEntry]:
    """Every queued message with its recipients, oldest first."""
    query = (
        select(
            queue_messages,
            queue_recipients.c.id.label("rcpt_id"),
            queue_recipients.c.recipient,
            queue_recipients.c.status,
            queue_recipients.c.attempts,
            queue_recipients.c.next_attempt_at,
            queue_recipients.c.last_reply,
        )
        .join(queue_recipients, queue_recipients.c.message_id == queue_messages.c.id)
        .order_by(queue_messages.c.id, queue_recipients.c.id)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    entries: list[QueueEntry] = []
    for _, group in groupby(rows, key=lambda r: r.id):
        items = list(group)
        entries.append(queue_entry(items[0], items, rcpt_id="rcpt_id"))
    return entries


def queue_entry(
    message: Row[Any], recipients: Iterable[Row[Any]], *, rcpt_id: str = "id"
) -> QueueEntry:
    """A :class:`QueueEntry` from one ``queue_messages`` row and its recipients' rows.

    Args:
        message: a row with the ``queue_messages`` columns.
        recipients: rows with the ``queue_recipients`` columns, in recipient order.
        rcpt_id: the name of the recipient id column in ``recipients`` (a join labels it).
    """
    return QueueEntry(
        id=message.id,
        sender=message.sender,
        blob_key=message.blob_key,
        size=message.size,
        priority=message.priority,
        created_at=message.created_at,
        recipients=tuple(
            QueueRecipient(
                id=getattr(r, rcpt_id),
                recipient=r.recipient,
                status=r.status,
                attempts=r.attempts,
                next_attempt_at=r.next_attempt_at,
                last_reply=r.last_reply,
            )
            for r in recipients
        ),
    )
