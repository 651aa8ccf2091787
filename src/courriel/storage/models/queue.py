"""Tables of the outbound queue: one message row, one row per recipient.

Each recipient carries its own state, attempt count and next attempt time, so that a
worker claims and settles recipients independently and every state change is one
transaction (a crash leaves each recipient either queued or settled). Later columns
(claim owner, lease, DSN options) are added by migrations on ``queue_recipients``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from courriel.storage.models.base import UTCDateTime, metadata

__all__ = ["queue_messages", "queue_recipients"]

Id = BigInteger().with_variant(Integer(), "sqlite")

queue_messages = Table(
    "queue_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sender", String(320), nullable=False),  # "" for the null reverse-path
    Column("blob_key", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),  # len(trace_header) + len(body)
    Column("trace_header", LargeBinary, nullable=False),
    Column("priority", String(16), nullable=False),  # "transactional" | "bulk"
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_queue_messages_blob_key", "blob_key"),
)

queue_recipients = Table(
    "queue_recipients",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "message_id",
        Id,
        ForeignKey("queue_messages.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("recipient", String(320), nullable=False),
    Column("status", String(16), nullable=False),  # "queued" | "delivered" | "failed"
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_reply", Text, nullable=False, default=""),  # last SMTP reply or error
    Index("ix_queue_recipients_due", "status", "next_attempt_at"),
    Index("ix_queue_recipients_message_id", "message_id"),
)
