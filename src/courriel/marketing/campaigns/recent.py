"""Campaigns' totals for lists of campaigns: the overview's newest few, the Campaigns page.

Reads the pre-aggregated ``campaign_stats`` (summed over a campaign's variants) for a
page of campaigns in ONE grouped statement, whatever the audience sizes and the number
of campaigns: never a count of recipients or events (design.md, Storage), and never one
report per row (:func:`~courriel.marketing.campaigns.report.campaign_report` is for one
campaign's page, with its variants and links).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.marketing.campaigns.report import Counts
from courriel.storage.models.campaigns import campaign_stats, campaigns

__all__ = ["RecentCampaign", "campaign_totals", "recent_campaigns"]

# Every counter of Counts (its label aside), summed over the variants.
_FIELDS = tuple(field.name for field in fields(Counts) if field.name != "label")


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
    totals = await campaign_totals(conn, [int(h.id) for h in heads])
    return [
        RecentCampaign(
            id=int(h.id),
            name=h.name,
            status=h.status,
            started_at=h.started_at,
            counts=totals[int(h.id)],
        )
        for h in heads
    ]


async def campaign_totals(conn: AsyncConnection, campaign_ids: Sequence[int]) -> dict[int, Counts]:
    """Each campaign's totals (label "total"), from one grouped read of ``campaign_stats``.

    Every id asked for is in the answer: a campaign without stats rows (a draft) has zeros.
    """
    ids = list(dict.fromkeys(campaign_ids))
    if not ids:
        return {}
    sums = await conn.execute(
        select(campaign_stats.c.campaign_id, *(func.sum(campaign_stats.c[f]) for f in _FIELDS))
        .where(campaign_stats.c.campaign_id.in_(ids))
        .group_by(campaign_stats.c.campaign_id)
    )
    found = {
        int(row[0]): {f: int(v or 0) for f, v in zip(_FIELDS, row[1:], strict=True)} for row in sums
    }
    return {ident: Counts(label="total", **found.get(ident, {})) for ident in ids}
