"""Campaign reports, read from the pre-aggregated ``campaign_stats`` and ``campaign_links``.

Invariant: a report never counts recipient or event rows (design.md: totals are
pre-aggregated, never counted on page load); it reads one row per variant and the top
links.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import NotFound
from courriel.storage.models.campaigns import (
    campaign_links,
    campaign_stats,
    campaign_variants,
    campaigns,
)

__all__ = ["CampaignReport", "Counts", "LinkCount", "campaign_report"]

TOP_LINKS = 10
_FIELDS = (
    "recipients",
    "sent",
    "delivered",
    "bounced",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "unsubscribes",
    "complaints",
    "orders",
    "revenue_minor",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    """The counters of one variant (or of the whole campaign) and their rates."""

    label: str  # "A", "B", … or "total"
    recipients: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    opens: int = 0
    unique_opens: int = 0
    clicks: int = 0
    unique_clicks: int = 0
    unsubscribes: int = 0
    complaints: int = 0
    orders: int = 0
    revenue_minor: int = 0

    def rates(self) -> dict[str, float]:
        """Shares of sent copies (0 when none was sent)."""
        sent = self.sent or 0

        def share(value: int) -> float:
            return round(value / sent, 4) if sent else 0.0

        return {
            "delivery_rate": share(self.delivered),
            "bounce_rate": share(self.bounced),
            "open_rate": share(self.unique_opens),
            "click_rate": share(self.unique_clicks),
            "unsubscribe_rate": share(self.unsubscribes),
            "complaint_rate": share(self.complaints),
        }

    def to_dict(self) -> dict[str, Any]:
        """Counters and rates."""
        return {**asdict(self), **self.rates()}


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkCount:
    """Clicks on one URL of the campaign."""

    url: str
    clicks: int
    unique_clicks: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignReport:
    """What a campaign did, per variant and in total."""

    campaign_id: int
    name: str
    status: str
    winner_variant_id: int | None
    variants: tuple[Counts, ...]
    total: Counts
    links: tuple[LinkCount, ...]  # the most clicked first

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "status": self.status,
            "winner_variant_id": self.winner_variant_id,
            "variants": [v.to_dict() for v in self.variants],
            "total": self.total.to_dict(),
            "links": [asdict(link) for link in self.links],
        }


async def campaign_report(conn: AsyncConnection, campaign_id: int) -> CampaignReport:
    """The report of one campaign. Raises NotFound."""
    head = (
        await conn.execute(
            select(campaigns.c.name, campaigns.c.status, campaigns.c.winner_variant_id).where(
                campaigns.c.id == campaign_id
            )
        )
    ).first()
    if head is None:
        raise NotFound(f"no campaign {campaign_id}")
    rows = (
        await conn.execute(
            select(campaign_variants.c.label, *(campaign_stats.c[f] for f in _FIELDS))
            .join(campaign_variants, campaign_variants.c.id == campaign_stats.c.variant_id)
            .where(campaign_stats.c.campaign_id == campaign_id)
            .order_by(campaign_variants.c.label)
        )
    ).all()
    variants = tuple(
        Counts(label=row.label, **{f: int(getattr(row, f)) for f in _FIELDS}) for row in rows
    )
    total = Counts(label="total", **{f: sum(getattr(v, f) for v in variants) for f in _FIELDS})
    links = (
        await conn.execute(
            select(campaign_links.c.url, campaign_links.c.clicks, campaign_links.c.unique_clicks)
            .where(campaign_links.c.campaign_id == campaign_id)
            .order_by(campaign_links.c.clicks.desc(), campaign_links.c.id)
            .limit(TOP_LINKS)
        )
    ).all()
    return CampaignReport(
        campaign_id=campaign_id,
        name=head.name,
        status=head.status,
        winner_variant_id=head.winner_variant_id,
        variants=variants,
        total=total,
        links=tuple(
            LinkCount(url=r.url, clicks=r.clicks, unique_clicks=r.unique_clicks) for r in links
        ),
    )
