"""The most recent campaigns with their results, for the dashboard's overview.

Reads the pre-aggregated ``campaign_stats`` (summed over a campaign's variants) for the
last few campaigns by id: two statements whatever the audience sizes, never a count of
recipients or events (design.md, Storage).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.marketing.campaigns.report import Counts
from courriel.storage.models.campaigns import campaign_stats, campaigns

__all__ = ["RecentCampaign", "recent_campaigns"]

_FIELDS = (
    "recipients",
    "sent",
    "delivered",
    "bounced",
    "unique_opens",
    "unique_clicks",
    "unsubscribes",
    "complaints",
    "orders",
    "revenue_minor",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecentCampaign:
    """One campaign's name, state and totals (rates through ``counts.rates()``)."""

    id: int
    name: str
    status: str
    started_at: datetime | None
    counts: Counts


async def recent_campaigns(conn: AsyncConnection, *, limit: int = 5) -> list[RecentCampaign]:
    """The ``limit`` newest campaigns (by id), newest first, with their totals."""
    heads = (
        await conn.execute(
            select(campaigns.c.id, campaigns.c.name, campaigns.c.status, campaigns.c.started_at)
            .order_by(campaigns.c.id.desc())
            .limit(limit)
        )
    ).all()
    if not heads:
        return []
    sums = await conn.execute(
        select(campaign_stats.c.campaign_id, *(func.sum(campaign_stats.c[f]) for f in _FIELDS))
        .where(campaign_stats.c.campaign_id.in_([h.id for h in heads]))
        .group_by(campaign_stats.c.campaign_id)
    )
    totals = {
        int(row[0]): {f: int(v or 0) for f, v in zip(_FIELDS, row[1:], strict=True)} for row in sums
    }
    return [
        RecentCampaign(
            id=int(h.id),
            name=h.name,
            status=h.status,
            started_at=h.started_at,
            counts=Counts(label="total", **totals.get(int(h.id), {})),
        )
        for h in heads
    ]
