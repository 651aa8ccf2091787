"""Operator actions on the outbound queue: show a message's attempts, retry now, drop.

Invariants:
- ``retry`` never touches a recipient a worker is sending right now (a live lease):
  clearing that lease could let a second worker send the same recipient again. It makes
  every other queued (deferred) recipient due at once and clears expired leases.
- ``drop`` deletes the message with its recipients and attempts in one transaction, and
  is never silent: it logs a WARNING naming the id, the sender and every recipient.
  The body is freed afterwards when nothing else references it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.delivery.queue import QueueEntry, queue_entry
from courriel.errors import NotFound
from courriel.mailstore.messages import free_blobs
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import queue_attempts, queue_messages, queue_recipients

__all__ = [
    "AttemptInfo",
    "MessageDetail",
    "describe_drop",
    "drop_message",
    "retry_due",
    "show_message",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptInfo:
    """One delivery attempt of one recipient (a ``queue_attempts`` row)."""

    recipient: str
    attempted_at: datetime
    mx_host: str  # "" when no host was reached
    tls: bool
    tls_verified: bool  # the peer certificate was verified
    code: int  # SMTP reply code, 0 when none
    reply: str
    outcome: str  # "delivered" | "deferred" | "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDetail:
    """A queued message, its recipients and every attempt, oldest attempt first."""

    entry: QueueEntry
    attempts: tuple[AttemptInfo, ...]


async def _load_entry(conn: AsyncConnection, message_id: int) -> QueueEntry:
    message = (
        await conn.execute(select(queue_messages).where(queue_messages.c.id == message_id))
    ).first()
    if message is None:
        raise NotFound(f"no queued message {message_id}")
    rows = (
        await conn.execute(
            select(queue_recipients)
            .where(queue_recipients.c.message_id == message_id)
            .order_by(queue_recipients.c.id)
        )
    ).all()
    return queue_entry(message, rows)


async def show_message(db: Database, message_id: int) -> MessageDetail:
    """A queued message with every attempt of every recipient.

    Raises:
        NotFound: no queued message has this id.
    """
    async with db.read() as conn:
        entry = await _load_entry(conn, message_id)
        rows = (
            await conn.execute(
                select(queue_attempts, queue_recipients.c.recipient)
                .join(queue_recipients, queue_recipients.c.id == queue_attempts.c.recipient_id)
                .where(queue_recipients.c.message_id == message_id)
                .order_by(queue_attempts.c.attempted_at, queue_attempts.c.id)
            )
        ).all()
    attempts = tuple(
        AttemptInfo(
            recipient=r.recipient,
            attempted_at=r.attempted_at,
            mx_host=r.mx_host,
            tls=bool(r.tls),
            tls_verified=bool(r.tls_verified),
            code=r.code,
            reply=r.reply,
            outcome=r.outcome,
        )
        for r in rows
    )
    return MessageDetail(entry=entry, attempts=attempts)


async def retry_due(db: Database, *, message_id: int | None, now: datetime) -> int:
    """Make queued recipients due now (``next_attempt_at = now``), leases not live cleared.

    Args:
        db: the database.
        message_id: one message, or None for every queued message.
        now: the current time.

    Returns:
        How many recipients were made due.

    Raises:
        NotFound: ``message_id`` names no queued message.
    """
    conditions = [
        queue_recipients.c.status == "queued",
        # A live lease means a worker is sending it now: leave it alone.
        or_(queue_recipients.c.lease_until.is_(None), queue_recipients.c.lease_until <= now),
    ]
    if message_id is not None:
        conditions.append(queue_recipients.c.message_id == message_id)
    async with db.write() as conn:
        if message_id is not None:
            await _load_entry(conn, message_id)
        ids = (
            await conn.scalars(
                update(queue_recipients)
                .where(*conditions)
                .values(next_attempt_at=now, claimed_by=None, lease_until=None)
                .returning(queue_recipients.c.id)
            )
        ).all()
    return len(ids)


async def drop_message(db: Database, blobs: BlobStore, message_id: int) -> QueueEntry:
    """Delete a queued message, its recipients and attempts; log it as a WARNING.

    Returns:
        The message as it was just before it was dropped.

    Raises:
        NotFound: no queued message has this id.
    """
    async with db.write() as conn:
        entry = await _load_entry(conn, message_id)
        # Recipients and attempts go too (ON DELETE CASCADE).
        await conn.execute(delete(queue_messages).where(queue_messages.c.id == message_id))
    log.warning("%s", describe_drop(entry))
    await free_blobs(db, blobs, [entry.blob_key])
    return entry


def describe_drop(entry: QueueEntry) -> str:
    """The one-line record of a dropped message: id, sender, recipients with status."""
    recipients = ", ".join(f"{r.recipient} ({r.status})" for r in entry.recipients)
    return (
        f"queue message {entry.id} dropped by the operator: "
        f"sender <{entry.sender}>, recipients {recipients}"
    )
