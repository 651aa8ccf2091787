"""Pre-aggregated campaign reports: counters bumped in the transaction of each event.

Owns the writes to ``campaign_stats`` and the "first time" marks of ``campaign_recipients``
(``opened_at``, ``clicked_at`` …). Every tracker of outcomes (the sender, the tracking routes,
the feedback processor, revenue attribution) goes through here, so that a report is read from
one row per variant and never counted on page load (design.md, Storage).

Invariants:
- A counter moves only inside the transaction that records its cause, so a report never
  counts an event that rolled back.
- ``mark_first`` sets a recipient's ``*_at`` column only when it is still NULL and says
  whether it did: "unique" counters move exactly once per recipient whatever the races
  (the UPDATE's row count decides, on both engines).
- Functions take a synchronous :class:`~sqlalchemy.engine.Connection` (they run inside
  ``Database.run_write`` callbacks and ``Mailer.send(on_commit=…)``); async callers use
  ``await conn.run_sync(lambda c: bump(c, …))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from courriel.errors import NotFound
from courriel.marketing.campaigns.tokens import Ref
from courriel.storage.models.campaigns import (
    campaign_recipients,
    campaign_stats,
    transactional_messages,
)

__all__ = ["COUNTERS", "FirstMark", "Recipient", "bump", "mark_first", "recipient"]

COUNTERS = frozenset(
    {
        "recipients",
        "sent",
        "delivered",
        "bounced",
        "opens",
        "unique_opens",
        "prefetches",
        "clicks",
        "unique_clicks",
        "unsubscribes",
        "complaints",
        "orders",
        "revenue_minor",
    }
)

FirstMark = Literal[
    "delivered_at",
    "opened_at",
    "clicked_at",
    "bounced_at",
    "unsubscribed_at",
    "complained_at",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipient:
    """Whom a :class:`Ref` names: a campaign copy or a transactional message."""

    ref: Ref
    email: str
    contact_id: int | None
    campaign_id: int | None  # None for transactional mail
    variant_id: int | None


def bump(conn: Connection, campaign_id: int, variant_id: int, **deltas: int) -> None:
    """Add ``deltas`` (counter name -> amount) to one variant's report row.

    Raises:
        ValueError: an unknown counter (a programming error).
    """
    unknown = set(deltas) - COUNTERS
    if unknown:
        raise ValueError(f"unknown campaign counters: {sorted(unknown)}")
    if not any(deltas.values()):
        return
    values = {name: campaign_stats.c[name] + amount for name, amount in deltas.items() if amount}
    conn.execute(
        update(campaign_stats)
        .where(
            campaign_stats.c.campaign_id == campaign_id,
            campaign_stats.c.variant_id == variant_id,
        )
        .values(values)
    )


def mark_first(conn: Connection, ref: Ref, column: FirstMark, now: datetime) -> bool:
    """Set ``column`` of the recipient (or transactional message) if unset; True if it was.

    Transactional messages keep only ``opened_at`` and ``clicked_at``; other marks are
    always False for them.
    """
    table = campaign_recipients if ref.kind == "c" else transactional_messages
    if column not in table.c:
        return False
    result = conn.execute(
        update(table).where(table.c.id == ref.id, table.c[column].is_(None)).values({column: now})
    )
    return result.rowcount == 1


def recipient(conn: Connection, ref: Ref) -> Recipient:
    """Load whom ``ref`` names.

    Raises:
        NotFound: no such row (deleted with its campaign or its contact, GDPR).
    """
    if ref.kind == "c":
        row = conn.execute(
            select(
                campaign_recipients.c.email,
                campaign_recipients.c.contact_id,
                campaign_recipients.c.campaign_id,
                campaign_recipients.c.variant_id,
            ).where(campaign_recipients.c.id == ref.id)
        ).first()
        if row is None:
            raise NotFound(f"no campaign recipient {ref}")
        return Recipient(
            ref=ref,
            email=row.email,
            contact_id=row.contact_id,
            campaign_id=row.campaign_id,
            variant_id=row.variant_id,
        )
    message = conn.execute(
        select(transactional_messages.c.email, transactional_messages.c.contact_id).where(
            transactional_messages.c.id == ref.id
        )
    ).first()
    if message is None:
        raise NotFound(f"no transactional message {ref}")
    return Recipient(
        ref=ref,
        email=message.email,
        contact_id=message.contact_id,
        campaign_id=None,
        variant_id=None,
    )
