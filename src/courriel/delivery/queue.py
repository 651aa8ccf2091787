"""The outbound queue: durable enqueue and listing (delivery itself is the worker's job).

A queued message is one ``queue_messages`` row (envelope sender, blob key, trace header)
and one ``queue_recipients`` row per recipient with its own state, so each recipient is
retried, delivered or bounced on its own, every change in one transaction.

A recipient's *state* as people read it (queued, deferred, failed, delivered) comes from
its stored ``status`` and ``attempts`` by ONE rule, :data:`_STATE_RULE`; Python
(:func:`recipient_state`) and SQL (:func:`state_column`, :func:`state_condition`) are both
made from it, so the dashboard's queue page, its overview health counts and the CLI agree.

Invariants:
- :func:`enqueue` runs inside the caller's write transaction, together with any local
  copies of the same message, so a crash leaves either all of it or none.
- :func:`queue_page` reads one page whatever the queue's size: the filters run in SQL,
  the page is keyset-paged by message id, and the trace headers are not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, and_, case, exists, func, insert, literal, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.storage.db import Database
from courriel.storage.models import queue_messages, queue_recipients, utcnow

__all__ = [
    "MAX_PAGE",
    "RECIPIENT_STATES",
    "Priority",
    "QueueEntry",
    "QueuePage",
    "QueueRecipient",
    "RecipientState",
    "enqueue",
    "enqueue_sync",
    "list_queue",
    "queue_entry",
    "queue_page",
    "recipient_state",
    "state_column",
    "state_condition",
]

Priority = Literal["transactional", "bulk"]
RecipientState = Literal["queued", "deferred", "failed", "delivered"]
RECIPIENT_STATES: tuple[RecipientState, ...] = get_args(RecipientState)
MAX_PAGE = 1000

# THE rule from a recipient's stored status and attempts to its state: (state, status,
# attempted) where attempted says whether attempts > 0 (None: either). Exactly one row
# matches any recipient. "deferred" is a queued recipient tried before (a temporary
# failure); "failed" recipients were given up (a bounce was or will be sent).
_STATE_RULE: tuple[tuple[RecipientState, str, bool | None], ...] = (
    ("queued", "queued", False),
    ("deferred", "queued", True),
    ("failed", "failed", None),
    ("delivered", "delivered", None),
)


def recipient_state(status: str, attempts: int) -> RecipientState:
    """The state :data:`_STATE_RULE` gives a recipient with this status and attempts.

    Raises:
        ValueError: a status the queue never stores.
    """
    for state, stored, attempted in _STATE_RULE:
        if status == stored and (attempted is None or attempted == (attempts > 0)):
            return state
    raise ValueError(f"unknown queue recipient status {status!r}")


def _rule_condition(stored: str, attempted: bool | None) -> ColumnElement[bool]:
    qr = queue_recipients
    if attempted is None:
        return qr.c.status == stored
    return and_(qr.c.status == stored, qr.c.attempts > 0 if attempted else qr.c.attempts <= 0)


def state_condition(state: str) -> ColumnElement[bool]:
    """SQL: the ``queue_recipients`` rows in ``state`` (:data:`_STATE_RULE`)."""
    for name, stored, attempted in _STATE_RULE:
        if name == state:
            return _rule_condition(stored, attempted)
    raise ValueError(f"unknown queue recipient state {state!r}")


def state_column() -> ColumnElement[str]:
    """SQL: each ``queue_recipients`` row's state, as a CASE of :data:`_STATE_RULE`."""
    whens = [
        (_rule_condition(stored, attempted), literal(name))
        for name, stored, attempted in _STATE_RULE
    ]
    return case(*whens, else_=queue_recipients.c.status)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRecipient:
    """One recipient of a queued message and its delivery state."""

    id: int
    recipient: str
    status: str  # "queued" | "delivered" | "failed"
    attempts: int  # delivery attempts made so far
    next_attempt_at: datetime  # when the worker may try again (UTC)
    last_reply: str  # the last SMTP reply or error, "" before the first attempt

    @property
    def state(self) -> RecipientState:
        """queued | deferred | failed | delivered, by :func:`recipient_state`."""
        return recipient_state(self.status, self.attempts)


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


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuePage:
    """One page of :func:`queue_page`."""

    entries: tuple[QueueEntry, ...]  # by message id, each with all its recipients
    following: int | None  # the ``after_id`` of the next page; None on the last page


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


async def queue_page(
    db: Database,
    *,
    state: str | None = None,
    domain: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> QueuePage:
    """Queued messages by id after ``after_id``, keeping those with a matching recipient.

    A message is kept when ONE of its recipients is both in ``state`` and at ``domain``
    (either filter may be left out); it comes with all its recipients. Two statements
    whatever the queue's size: the page's messages (filtered in SQL), their recipients.

    Args:
        state: queued | deferred | failed | delivered (:func:`recipient_state`).
        domain: the recipient's domain, compared without case.

    Raises:
        InvalidInput: unknown state, or ``limit`` outside 1..:data:`MAX_PAGE`.
    """
    if state and state not in RECIPIENT_STATES:
        raise InvalidInput(f"unknown state {state!r}", field="state")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is 1 to {MAX_PAGE}", field="limit")
    qm, qr = queue_messages, queue_recipients
    match: list[ColumnElement[bool]] = [qr.c.message_id == qm.c.id]
    if state:
        match.append(state_condition(state))
    wanted = (domain or "").strip().lower()
    if wanted:
        match.append(func.lower(qr.c.recipient).endswith("@" + wanted, autoescape=True))
    heads_query = (
        select(qm.c.id, qm.c.sender, qm.c.blob_key, qm.c.size, qm.c.priority, qm.c.created_at)
        .where(qm.c.id > after_id, exists().where(*match))
        .order_by(qm.c.id)
        .limit(limit + 1)
    )
    async with db.read() as conn:
        heads: Sequence[Any] = (await conn.execute(heads_query)).all()
        shown = heads[:limit]
        rows: Sequence[Row[Any]] = ()
        if shown:
            rows = (
                await conn.execute(
                    select(qr)
                    .where(qr.c.message_id.in_([h.id for h in shown]))
                    .order_by(qr.c.message_id, qr.c.id)
                )
            ).all()
    by_message = {key: list(group) for key, group in groupby(rows, key=lambda r: r.message_id)}
    return QueuePage(
        entries=tuple(queue_entry(h, by_message.get(h.id, ())) for h in shown),
        following=shown[-1].id if len(heads) > limit else None,
    )


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
