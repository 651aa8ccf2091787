"""Tables of the outbound queue: one message row, one row per recipient.

Each recipient carries its own state, attempt count and next attempt time, so that a
worker claims and settles recipients independently and every state change is one
transaction (a crash leaves each recipient either queued or settled). Later columns
(claim owner, lease, DSN options) are added by migrations on ``queue_recipients``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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

__all__ = ["queue_attempts", "queue_messages", "queue_recipients"]

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
    # What the message needs from the receiving server (0002):
    Column("smtputf8", Boolean, nullable=False, default=False),  # RFC 6531: non-ASCII envelope
    Column("eight_bit", Boolean, nullable=False, default=False),  # RFC 6152: 8-bit body
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
    # Claims (0002): a worker owns a recipient until lease_until; after that another may
    # take it back (a crashed worker's claim expires).
    Column("claimed_by", String(64), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("dsn_sent", Boolean, nullable=False, default=False),  # failure DSN generated
    Column("delay_warned", Boolean, nullable=False, default=False),  # delay DSN generated
    Index("ix_queue_recipients_due", "status", "next_attempt_at"),
    Index("ix_queue_recipients_message_id", "message_id"),
)

# Every delivery attempt of a recipient, for `courriel queue show` (0002).
queue_attempts = Table(
    "queue_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "recipient_id",
        Id,
        ForeignKey("queue_recipients.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempted_at", UTCDateTime(), nullable=False),
    Column("mx_host", String(255), nullable=False, default=""),  # "" when none was reached
    Column("tls", Boolean, nullable=False, default=False),  # STARTTLS or implicit TLS used
    Column("tls_verified", Boolean, nullable=False, default=False),  # peer cert validated
    Column("code", Integer, nullable=False, default=0),  # SMTP reply code, 0 if none
    Column("reply", Text, nullable=False, default=""),  # the remote reply or local error
    Column("outcome", String(16), nullable=False),  # "delivered" | "deferred" | "failed"
    Index("ix_queue_attempts_recipient_id", "recipient_id"),
)
