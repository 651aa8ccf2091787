"""A contact's history for its profile page: list memberships and one merged timeline.

Owns reading (never writing) what happened to one contact across the tables other
modules write: ``events``, ``orders``, ``campaign_recipients`` (with the campaign's name)
and ``transactional_messages``, each message with the first open and click recorded on it.

Invariants:
- The timeline is newest first and paged by a keyset cursor (time, kind, id), never
  OFFSET: each source is read with the cursor's condition and its own ``LIMIT``, the rows
  are merged and the first ``limit`` kept, so one page costs at most four small queries
  whatever the contact's history holds.
- A campaign copy appears once it was sent (``sent_at``); pending, skipped and failed
  copies are not part of the person's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.storage.models.campaigns import campaign_recipients, campaigns, transactional_messages
from courriel.storage.models.marketing import events, list_members, lists, orders

__all__ = [
    "KINDS",
    "MAX_TIMELINE",
    "Membership",
    "TimelineEntry",
    "TimelinePage",
    "contact_lists",
    "timeline",
]

# The timeline's kinds, in their order of ties (a greater rank comes first at equal times).
KINDS = ("event", "order", "campaign", "transactional")
MAX_TIMELINE = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    """The contact's membership of one list."""

    list_id: int
    name: str
    status: str  # subscribed | pending | unsubscribed
    added_at: datetime
    confirmed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEntry:
    """One thing that happened to the contact."""

    kind: str  # one of KINDS
    id: int  # the row's id in its own table
    at: datetime
    title: str  # event name, order number, campaign name or message subject
    detail: str  # a short summary (event source, order status, message status)
    value_minor: int | None = None  # orders: total in minor units
    currency: str | None = None  # orders
    value: float | None = None  # events: their money value in major units, if any
    opened_at: datetime | None = None  # messages: first open
    clicked_at: datetime | None = None  # messages: first click
    bounced_at: datetime | None = None  # campaign copies

    @property
    def cursor(self) -> str:
        """The cursor of the page that starts after this entry."""
        return f"{self.at.isoformat()}|{self.kind}|{self.id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelinePage:
    """Entries newest first and the cursor of the next page (None at the end)."""

    entries: list[TimelineEntry]
    next: str | None


async def contact_lists(conn: AsyncConnection, contact_id: int) -> list[Membership]:
    """Every list the contact is a member of (any status), by list name."""
    result = await conn.execute(
        select(
            lists.c.id,
            lists.c.name,
            list_members.c.status,
            list_members.c.added_at,
            list_members.c.confirmed_at,
        )
        .join(lists, lists.c.id == list_members.c.list_id)
        .where(list_members.c.contact_id == contact_id)
        .order_by(lists.c.name)
    )
    return [
        Membership(
            list_id=int(row.id),
            name=row.name,
            status=row.status,
            added_at=row.added_at,
            confirmed_at=row.confirmed_at,
        )
        for row in result
    ]


@dataclass(frozen=True, slots=True)
class _Cursor:
    at: datetime
    rank: int
    id: int


def _parse_cursor(value: str | None) -> _Cursor | None:
    if not value:
        return None
    try:
        at_text, kind, id_text = value.split("|")
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None or kind not in KINDS:
            raise ValueError(value)
        return _Cursor(at, KINDS.index(kind), int(id_text))
    except ValueError:
        raise InvalidInput("not a timeline cursor", field="before") from None


def _before(
    cursor: _Cursor | None, kind: str, at: ColumnElement[Any], row_id: ColumnElement[Any]
) -> ColumnElement[bool]:
    """Rows of ``kind`` that come after ``cursor`` in (time, rank, id) descending order."""
    if cursor is None:
        return true()
    rank = KINDS.index(kind)
    if rank < cursor.rank:
        return at <= cursor.at
    if rank > cursor.rank:
        return at < cursor.at
    return or_(at < cursor.at, and_(at == cursor.at, row_id < cursor.id))


@dataclass(frozen=True, slots=True)
class _Window:
    """The rows one page reads from each source: after ``cursor``, ``limit`` of them."""

    cursor: _Cursor | None
    limit: int

    def of(
        self, query: Select[Any], kind: str, at: ColumnElement[Any], row_id: ColumnElement[Any]
    ) -> Select[Any]:
        """``query`` (one source's rows of the contact) in this window, newest first."""
        return (
            query.where(_before(self.cursor, kind, at, row_id))
            .order_by(at.desc(), row_id.desc())
            .limit(self.limit)
        )


async def _events(conn: AsyncConnection, contact_id: int, window: _Window) -> list[TimelineEntry]:
    ev = events.c
    query = select(ev.id, ev.name, ev.source, ev.value, ev.occurred_at).where(
        ev.contact_id == contact_id
    )
    result = await conn.execute(window.of(query, "event", ev.occurred_at, ev.id))
    return [
        TimelineEntry(
            kind="event",
            id=int(row.id),
            at=row.occurred_at,
            title=row.name,
            detail=row.source,
            value=row.value,
        )
        for row in result
    ]


async def _orders(conn: AsyncConnection, contact_id: int, window: _Window) -> list[TimelineEntry]:
    o = orders.c
    query = select(
        o.id, o.number, o.external_id, o.status, o.total_minor, o.currency, o.placed_at
    ).where(o.contact_id == contact_id)
    result = await conn.execute(window.of(query, "order", o.placed_at, o.id))
    return [
        TimelineEntry(
            kind="order",
            id=int(row.id),
            at=row.placed_at,
            title=f"Order {row.number or row.external_id}",
            detail=row.status,
            value_minor=int(row.total_minor),
            currency=row.currency,
        )
        for row in result
    ]


async def _campaign_copies(
    conn: AsyncConnection, contact_id: int, window: _Window
) -> list[TimelineEntry]:
    cr = campaign_recipients.c
    query = (
        select(
            cr.id,
            campaigns.c.name,
            cr.status,
            cr.sent_at,
            cr.opened_at,
            cr.clicked_at,
            cr.bounced_at,
        )
        .join(campaigns, campaigns.c.id == cr.campaign_id)
        .where(cr.contact_id == contact_id, cr.sent_at.is_not(None))
    )
    result = await conn.execute(window.of(query, "campaign", cr.sent_at, cr.id))
    return [
        TimelineEntry(
            kind="campaign",
            id=int(row.id),
            at=row.sent_at,
            title=row.name,
            detail=row.status,
            opened_at=row.opened_at,
            clicked_at=row.clicked_at,
            bounced_at=row.bounced_at,
        )
        for row in result
    ]


async def _transactional(
    conn: AsyncConnection, contact_id: int, window: _Window
) -> list[TimelineEntry]:
    tm = transactional_messages.c
    query = select(tm.id, tm.subject, tm.status, tm.created_at, tm.opened_at, tm.clicked_at).where(
        tm.contact_id == contact_id
    )
    result = await conn.execute(window.of(query, "transactional", tm.created_at, tm.id))
    return [
        TimelineEntry(
            kind="transactional",
            id=int(row.id),
            at=row.created_at,
            title=row.subject,
            detail=row.status,
            opened_at=row.opened_at,
            clicked_at=row.clicked_at,
        )
        for row in result
    ]


async def timeline(
    conn: AsyncConnection, contact_id: int, *, before: str | None = None, limit: int = 100
) -> TimelinePage:
    """The contact's events, orders and messages, newest first.

    Args:
        conn: an open connection (one read transaction gives one consistent page).
        contact_id: the contact.
        before: the cursor of a previous page's last entry (:attr:`TimelinePage.next`).
        limit: entries per page, 1 to :data:`MAX_TIMELINE`.

    Raises:
        InvalidInput: a malformed cursor (field "before") or limit (field "limit").
    """
    if not 1 <= limit <= MAX_TIMELINE:
        raise InvalidInput(f"limit must be 1 to {MAX_TIMELINE}", field="limit")
    # One more than the page from each source, to know whether another page follows.
    window = _Window(_parse_cursor(before), limit + 1)
    entries: list[TimelineEntry] = []
    for source in (_events, _orders, _campaign_copies, _transactional):
        entries.extend(await source(conn, contact_id, window))
    entries.sort(key=lambda e: (e.at, KINDS.index(e.kind), e.id), reverse=True)
    page = entries[:limit]
    more = len(entries) > limit
    return TimelinePage(entries=page, next=page[-1].cursor if more and page else None)
