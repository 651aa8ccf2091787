"""The dashboard's Overview (``GET /``): the last 30 days of mail at a glance.

Everything on it is pre-aggregated (design.md, Storage): the daily totals of
:mod:`courriel.marketing.dailystats` (at most 30 × 8 rows), the newest campaigns' rows of
``campaign_stats`` (:mod:`courriel.marketing.campaigns.recent`) and one grouped count of the
outbound queue (:mod:`courriel.delivery.health`, a small table). Nothing counts contacts,
events or orders on page load, so the page costs the same with 1M contacts as with ten.

The charts' data travels as JSON in ``<script type="application/json">`` blocks that
``static/overview.js`` reads (the CSP forbids inline script); the numbers are also in the
page as text (cards and a table), so it reads without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get

from courriel.delivery.health import queue_health
from courriel.marketing.campaigns.recent import recent_campaigns
from courriel.marketing.dailystats import DailySeries, read_series
from courriel.web.app import Services
from courriel.web.dashboard.access import allow
from courriel.web.dashboard.render import page

__all__ = ["COMPLAINT_LIMIT", "DAYS", "ROUTES", "Headline", "headline"]

DAYS = 30
# Gmail's and Yahoo's bulk sender rules (February 2024): keep spam complaints below 0.3 %
# of delivered mail (and ideally below 0.1 %).
COMPLAINT_LIMIT = 0.003
RECENT = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Headline:
    """The 30-day totals and rates the cards show."""

    sent: int
    delivered: int
    opened: int
    clicked: int
    revenue_minor: int
    bounced: int
    complained: int
    unsubscribed: int
    open_rate: float  # unique opens / delivered
    click_rate: float  # unique clicks / delivered
    complaint_rate: float  # complaints / delivered, as mailbox providers measure it

    @property
    def complaints_ok(self) -> bool:
        """Below the Gmail/Yahoo 0.3 % line."""
        return self.complaint_rate < COMPLAINT_LIMIT


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def headline(series: DailySeries) -> Headline:
    """The totals and rates of ``series`` (rates over delivered mail; 0 when none)."""
    total = {metric: series.total(metric) for metric in series.values}
    delivered = total.get("delivered", 0)
    return Headline(
        sent=total.get("sent", 0),
        delivered=delivered,
        opened=total.get("opened", 0),
        clicked=total.get("clicked", 0),
        revenue_minor=total.get("revenue_minor", 0),
        bounced=total.get("bounced", 0),
        complained=total.get("complained", 0),
        unsubscribed=total.get("unsubscribed", 0),
        open_rate=_share(total.get("opened", 0), delivered),
        click_rate=_share(total.get("clicked", 0), delivered),
        complaint_rate=_share(total.get("complained", 0), delivered),
    )


def chart_data(series: DailySeries) -> dict[str, Any]:
    """What overview.js draws: labels, each metric per day, the daily complaint rate (%)."""
    delivered = series.values["delivered"]
    complained = series.values["complained"]
    return {
        "labels": [day.isoformat() for day in series.days],
        "metrics": {metric: list(values) for metric, values in series.values.items()},
        "complaint_rate": [
            round(100 * _share(c, d), 3) for c, d in zip(complained, delivered, strict=True)
        ],
        "complaint_limit": 100 * COMPLAINT_LIMIT,
    }


@get("/", **allow("marketing"))
async def overview(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The overview page (any role that reads marketing)."""
    today = services.clock().date()
    async with services.db.read() as conn:
        series = await read_series(conn, last_day=today, days=DAYS)
        recent = await recent_campaigns(conn, limit=RECENT)
        queue = await queue_health(conn)
    return page(
        request,
        "overview/index.html",
        active="overview",
        title="Overview",
        first_day=series.days[0],
        last_day=series.days[-1],
        head=headline(series),
        charts=chart_data(series),
        recent=recent,
        queue=queue,
        complaint_limit=COMPLAINT_LIMIT,
    )


ROUTES = [overview]
