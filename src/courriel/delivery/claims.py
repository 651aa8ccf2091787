"""Claiming due queue recipients and settling them: the queue's concurrency control.

A worker *claims* due recipients (``status='queued'``, ``next_attempt_at <= now``, no live
lease) by stamping ``claimed_by``/``lease_until`` in one transaction, then *settles* each
one (delivered, deferred or failed) in one transaction that records the attempt.

Invariants:
- On PostgreSQL the claim is ``UPDATE … WHERE id IN (SELECT … FOR UPDATE OF
  queue_recipients SKIP LOCKED LIMIT n)``, so workers sharing one database never claim the
  same recipient; on SQLite ``Database.write()`` takes the single writer lock at BEGIN, so
  the same statement without the locking clause is already exclusive.
- A claim is only a lease: once ``lease_until`` has passed, another worker may take the
  recipient back (its first owner crashed). Settling checks ``claimed_by`` and
  ``status='queued'`` again, so a claim that was taken back cannot be settled twice.
- A settle transaction locks the message rows it touches first (PostgreSQL), so that two
  workers settling the last two recipients of one message cannot both miss deleting it.
- When no recipient of a message is left queued (or failed without its DSN), the message
  row is deleted (recipients and attempts cascade); its blob is freed after the commit
  when nothing else references it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import (
    Boolean,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.mailstore.messages import free_blobs
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import queue_attempts, queue_messages, queue_recipients

__all__ = ["AttemptRecord", "Claim", "Outcome", "Settlement", "claim", "settle"]

Outcome = Literal["delivered", "deferred", "failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """One claimed recipient with what the worker needs to send its message."""

    recipient_id: int
    message_id: int
    sender: str  # "" for the null reverse-path (never bounced)
    recipient: str
    blob_key: str
    trace_header: bytes  # prepended to the blob on the wire
    size: int  # octets of trace header + body
    smtputf8: bool
    eight_bit: bool
    priority: str  # "transactional" | "bulk"
    attempts: int  # attempts made before this claim
    created_at: datetime  # when the message was queued (expiry counts from here)
    delay_warned: bool  # a delay notice was sent already


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    """One delivery attempt, as stored in ``queue_attempts``."""

    attempted_at: datetime
    mx_host: str  # "" when no host was reached (DNS failure, every host down)
    tls: bool
    tls_verified: bool
    code: int  # remote reply code, 0 when none
    reply: str  # the remote reply or the local reason


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """The result of one attempt for one claimed recipient."""

    claim: Claim
    outcome: Outcome
    attempt: AttemptRecord
    next_attempt_at: datetime | None = None  # required for "deferred"
    dsn_sent: bool = False  # failed: the failure DSN was produced (or none is due)
    delay_warned: bool = False  # deferred: a delay notice was produced now


# Claim order: transactional before bulk, then oldest due first (claim and its reload).
_CLAIM_ORDER = (
    case((queue_messages.c.priority == "transactional", 0), else_=1),
    queue_recipients.c.next_attempt_at,
    queue_recipients.c.id,
)


async def claim(
    db: Database, *, worker: str, now: datetime, limit: int, lease: timedelta
) -> list[Claim]:
    """Claim up to ``limit`` due recipients for ``worker`` in one transaction.

    Due recipients are taken ``transactional`` before ``bulk``, then oldest
    ``next_attempt_at`` first. A recipient whose lease has expired counts as due.

    Args:
        db: the database.
        worker: the claiming worker's id (stored in ``claimed_by``).
        now: the current time (injected clock).
        limit: the most recipients to claim.
        lease: how long the claim holds before another worker may take it back.

    Returns:
        The claims, in claim order.

    Raises:
        StorageError: the database failed; nothing was claimed.
    """
    due = (
        select(queue_recipients.c.id)
        .join(queue_messages, queue_messages.c.id == queue_recipients.c.message_id)
        .where(
            queue_recipients.c.status == "queued",
            queue_recipients.c.next_attempt_at <= now,
            or_(queue_recipients.c.lease_until.is_(None), queue_recipients.c.lease_until <= now),
        )
        .order_by(*_CLAIM_ORDER)
        .limit(limit)
    )
    # The one dialect branch of the queue (design: "SKIP LOCKED on PostgreSQL, a single
    # writer on SQLite"): SQLite has no row locks; its BEGIN IMMEDIATE serialises claims.
    if db.dialect == "postgresql":
        due = due.with_for_update(skip_locked=True, of=queue_recipients)
    async with db.write() as conn:
        ids = (
            await conn.scalars(
                update(queue_recipients)
                .where(queue_recipients.c.id.in_(due.scalar_subquery()))
                .values(claimed_by=worker, lease_until=now + lease)
                .returning(queue_recipients.c.id)
            )
        ).all()
        if not ids:
            return []
        return await _load_claims(conn, list(ids))


async def _load_claims(conn: AsyncConnection, ids: list[int]) -> list[Claim]:
    rows = (
        await conn.execute(
            select(
                queue_recipients.c.id.label("rid"),
                queue_recipients.c.recipient,
                queue_recipients.c.attempts,
                queue_recipients.c.delay_warned,
                queue_recipients.c.next_attempt_at,
                queue_messages,
            )
            .join(queue_messages, queue_messages.c.id == queue_recipients.c.message_id)
            .where(queue_recipients.c.id.in_(ids))
            .order_by(*_CLAIM_ORDER)
        )
    ).all()
    return [
        Claim(
            recipient_id=r.rid,
            message_id=r.id,
            sender=r.sender,
            recipient=r.recipient,
            blob_key=r.blob_key,
            trace_header=bytes(r.trace_header),
            size=r.size,
            smtputf8=bool(r.smtputf8),
            eight_bit=bool(r.eight_bit),
            priority=r.priority,
            attempts=r.attempts,
            created_at=r.created_at,
            delay_warned=bool(r.delay_warned),
        )
        for r in rows
    ]


async def settle(
    db: Database, blobs: BlobStore, *, worker: str, settlements: Sequence[Settlement]
) -> list[int]:
    """Settle claimed recipients in one transaction, recording each attempt.

    A recipient is settled only while it is still queued and claimed by ``worker``;
    others (the claim expired and was taken back) are left untouched. Messages left
    with nothing to do are deleted, and their blobs freed after the commit.

    Args:
        db: the database.
        blobs: the blob store (for freeing bodies of finished messages).
        worker: the settling worker's id.
        settlements: one entry per recipient.

    Returns:
        The recipient ids that were settled.

    Raises:
        StorageError: the database failed; nothing was settled.
    """
    if not settlements:
        return []
    message_ids = sorted({s.claim.message_id for s in settlements})
    settled, freed = await db.run_write(
        lambda conn: _settle_all(conn, worker, settlements, message_ids)
    )
    if freed:
        await free_blobs(db, blobs, freed)
    return [s.claim.recipient_id for s in settled]


def _settle_all(
    conn: Connection, worker: str, settlements: Sequence[Settlement], message_ids: list[int]
) -> tuple[list[Settlement], list[str]]:
    # One transaction, run synchronously: on SQLite in one call on the writer thread.
    if conn.dialect.name == "postgresql":
        # Serialise settlers of the same message (see the module invariants).
        conn.execute(
            select(queue_messages.c.id)
            .where(queue_messages.c.id.in_(message_ids))
            .order_by(queue_messages.c.id)
            .with_for_update()
        )
    settled = _settle_many(conn, worker, settlements)
    if settled:
        conn.execute(insert(queue_attempts), [_attempt_row(s) for s in settled])
    return settled, _delete_finished(conn, message_ids)


# The recipients of a batch that are still ours to settle (queued, claimed by this worker).
_MINE = select(queue_recipients.c.id).where(
    queue_recipients.c.id.in_(bindparam("ids", expanding=True)),
    queue_recipients.c.claimed_by == bindparam("worker"),
    queue_recipients.c.status == "queued",
)
# One statement for every settlement (executemany); a NULL parameter keeps the column.
_SETTLE = (
    update(queue_recipients)
    .where(queue_recipients.c.id == bindparam("rid"))
    .values(
        status=bindparam("new_status"),
        attempts=queue_recipients.c.attempts + 1,
        last_reply=bindparam("reply"),
        claimed_by=None,
        lease_until=None,
        next_attempt_at=func.coalesce(
            bindparam("next_at", type_=queue_recipients.c.next_attempt_at.type),
            queue_recipients.c.next_attempt_at,
        ),
        dsn_sent=func.coalesce(bindparam("dsn", type_=Boolean()), queue_recipients.c.dsn_sent),
        delay_warned=func.coalesce(
            bindparam("warned", type_=Boolean()), queue_recipients.c.delay_warned
        ),
    )
)


def _settle_many(
    conn: Connection, worker: str, settlements: Sequence[Settlement]
) -> list[Settlement]:
    ids = [s.claim.recipient_id for s in settlements]
    mine_query = _MINE.with_for_update() if conn.dialect.name == "postgresql" else _MINE
    mine = set(conn.scalars(mine_query, {"ids": ids, "worker": worker}))
    settled = [s for s in settlements if s.claim.recipient_id in mine]
    if settled:
        conn.execute(_SETTLE, [_settle_params(s) for s in settled])
    return settled


def _settle_params(s: Settlement) -> dict[str, object]:
    deferred = s.outcome == "deferred"
    return {
        "rid": s.claim.recipient_id,
        "new_status": "queued" if deferred else s.outcome,
        "reply": _reply_text(s.attempt),
        "next_at": (s.next_attempt_at or s.attempt.attempted_at) if deferred else None,
        "dsn": s.dsn_sent if s.outcome == "failed" else None,
        "warned": True if deferred and s.delay_warned else None,
    }


def _reply_text(attempt: AttemptRecord) -> str:
    if attempt.code and not attempt.reply.startswith(str(attempt.code)):
        return f"{attempt.code} {attempt.reply}".strip()
    return attempt.reply


def _attempt_row(s: Settlement) -> dict[str, object]:
    a = s.attempt
    return {
        "recipient_id": s.claim.recipient_id,
        "attempted_at": a.attempted_at,
        "mx_host": a.mx_host,
        "tls": a.tls,
        "tls_verified": a.tls_verified,
        "code": a.code,
        "reply": a.reply,
        "outcome": s.outcome,
    }


def _delete_finished(conn: Connection, message_ids: list[int]) -> list[str]:
    pending = exists().where(
        queue_recipients.c.message_id == queue_messages.c.id,
        or_(
            queue_recipients.c.status == "queued",
            and_(queue_recipients.c.status == "failed", queue_recipients.c.dsn_sent.is_(False)),
        ),
    )
    keys = (
        conn.scalars(
            delete(queue_messages)
            .where(queue_messages.c.id.in_(message_ids), ~pending)
            .returning(queue_messages.c.blob_key)
        )
    ).all()
    return list(keys)
