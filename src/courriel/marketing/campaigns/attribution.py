"""Revenue attribution: which campaign earned an order, and how much it is credited.

Owns ``order_attributions`` and the ``orders`` / ``revenue_minor`` counters of
``campaign_stats`` (moved through :mod:`courriel.marketing.campaigns.stats`).

Rule: an order is attributed to the campaign of the contact's **last** "Clicked Email"
event (one that names a ``campaign_id``; transactional clicks earn nothing) within
``tracking.attribution_window`` before the order's ``placed_at`` (the window's edges are
inclusive). The campaign is credited one order and the order's net revenue:
``total_minor - refunded_minor``, or nothing once the order is cancelled.

Invariants:
- One attribution per order (the table's primary key), decided when the order is first
  seen and never moved to another campaign afterwards; replays of the same webhook change
  nothing.
- ``campaign_stats.revenue_minor`` always equals the sum of the ``revenue_minor`` of the
  campaign's attributions: a later change of the order's total, a refund or a
  cancellation bumps the counter by the difference in the same transaction.
- ``orders`` moves by one when the attribution is made and never again (a cancelled order
  was still an order the campaign led to; its revenue is zero).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.marketing import dailystats
from courriel.marketing.campaigns import stats
from courriel.marketing.commerce import upsert_statement
from courriel.storage.models.campaigns import campaign_stats, order_attributions
from courriel.storage.models.marketing import events, orders

__all__ = ["DEFAULT_WINDOW", "attribute_order", "refresh_revenue"]

DEFAULT_WINDOW = timedelta(days=5)  # tracking.attribution_window's default
_CLICK = "Clicked Email"
# Clicks read per order before giving up on finding one of a campaign still present.
_MAX_CLICKS = 50


def _net(row: Any) -> int:
    if row.status == "cancelled":
        return 0
    return max(int(row.total_minor) - int(row.refunded_minor), 0)


async def attribute_order(
    conn: AsyncConnection,
    order_id: int,
    *,
    window: timedelta = DEFAULT_WINDOW,
    now: datetime | None = None,
) -> bool:
    """Attribute the order to a campaign, or bring its credited revenue up to date.

    Call it in the transaction that creates an order or changes its total, refunds or
    status (:mod:`courriel.marketing.orders` does).

    Args:
        conn: a connection inside the caller's write transaction.
        order_id: the order.
        window: how long after a click an order still counts (``tracking.attribution_window``).
        now: the present; clicks recorded after it are ignored (None: no such bound).

    Returns:
        True when the order is attributed to a campaign (now or before).
    """
    order = (
        await conn.execute(
            select(
                orders.c.contact_id,
                orders.c.placed_at,
                orders.c.total_minor,
                orders.c.refunded_minor,
                orders.c.status,
            ).where(orders.c.id == order_id)
        )
    ).first()
    if order is None:
        return False
    revenue = _net(order)
    if await _adjust(conn, order_id, revenue, order.placed_at):
        return True
    if order.contact_id is None:
        return False
    until = order.placed_at if now is None else min(order.placed_at, now)
    click = await _last_click(conn, int(order.contact_id), order.placed_at - window, until)
    if click is None:
        return False
    campaign_id, variant_id, clicked_at = click
    inserted = await conn.execute(
        upsert_statement(conn, order_attributions)
        .values(
            order_id=order_id,
            campaign_id=campaign_id,
            variant_id=variant_id,
            clicked_at=clicked_at,
            revenue_minor=revenue,
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(order_attributions.c.order_id)
    )
    if inserted.first() is None:
        # A concurrent transaction attributed it first (PostgreSQL): adjust instead.
        return await _adjust(conn, order_id, revenue, order.placed_at)
    await conn.run_sync(
        lambda c: stats.bump(c, campaign_id, variant_id, orders=1, revenue_minor=revenue)
    )
    await dailystats.bump_in(conn, "revenue_minor", order.placed_at, revenue)
    return True


async def refresh_revenue(conn: AsyncConnection, order_id: int) -> bool:
    """Bring an attributed order's credited revenue up to date (after a refund); never
    attributes an order that is not. False when the order has no attribution."""
    order = (
        await conn.execute(
            select(
                orders.c.total_minor,
                orders.c.refunded_minor,
                orders.c.status,
                orders.c.placed_at,
            ).where(orders.c.id == order_id)
        )
    ).first()
    return order is not None and await _adjust(conn, order_id, _net(order), order.placed_at)


async def _adjust(conn: AsyncConnection, order_id: int, revenue: int, placed_at: datetime) -> bool:
    """Bring an existing attribution to ``revenue``; False when there is none. The day
    totals move on the order's day (``placed_at``), where its revenue was counted."""
    row = (
        await conn.execute(
            select(
                order_attributions.c.campaign_id,
                order_attributions.c.variant_id,
                order_attributions.c.revenue_minor,
            ).where(order_attributions.c.order_id == order_id)
        )
    ).first()
    if row is None:
        return False
    delta = revenue - int(row.revenue_minor)
    if delta:
        await conn.execute(
            update(order_attributions)
            .where(order_attributions.c.order_id == order_id)
            .values(revenue_minor=revenue)
        )
        campaign_id, variant_id = int(row.campaign_id), int(row.variant_id)
        await conn.run_sync(lambda c: stats.bump(c, campaign_id, variant_id, revenue_minor=delta))
        await dailystats.bump_in(conn, "revenue_minor", placed_at, delta)
    return True


async def _last_click(
    conn: AsyncConnection, contact_id: int, since: datetime, until: datetime
) -> tuple[int, int, datetime] | None:
    """The (campaign, variant, time) of the contact's last campaign click in [since, until].

    Clicks of transactional mail and of campaigns deleted since are passed over.
    """
    rows = await conn.execute(
        select(events.c.properties, events.c.occurred_at)
        .where(
            events.c.contact_id == contact_id,
            events.c.name == _CLICK,
            events.c.occurred_at >= since,
            events.c.occurred_at <= until,
        )
        .order_by(events.c.occurred_at.desc(), events.c.id.desc())
        .limit(_MAX_CLICKS)
    )
    for properties, occurred_at in rows:
        campaign_id = properties.get("campaign_id") if isinstance(properties, dict) else None
        variant_id = properties.get("variant_id") if isinstance(properties, dict) else None
        if not isinstance(campaign_id, int) or not isinstance(variant_id, int):
            continue
        if await _has_report(conn, campaign_id, variant_id):
            return campaign_id, variant_id, occurred_at
    return None


async def _has_report(conn: AsyncConnection, campaign_id: int, variant_id: int) -> bool:
    found = await conn.execute(
        select(campaign_stats.c.campaign_id).where(
            campaign_stats.c.campaign_id == campaign_id,
            campaign_stats.c.variant_id == variant_id,
        )
    )
    return found.first() is not None
