"""The dashboard's Campaigns section: the list, one campaign's progress and report, and
its state changes (send a draft, pause, resume, cancel).

Every number comes from the campaign service and the pre-aggregated counters
(``campaign_stats``): a campaign's page reads :func:`courriel.marketing.campaigns.report.
campaign_report` (what ``courriel campaign report`` and ``GET /api/v1/campaigns/{id}/report``
read), the list reads a page's totals in one grouped query
(:func:`~courriel.marketing.campaigns.recent.campaign_totals`), never a report per row.
State changes call the same service functions as the API. The wizard lives in
:mod:`courriel.web.dashboard.campaigns_wizard`.

Invariants:
- While a campaign is scheduled, sending or testing its page polls the progress fragment
  every 2 s; when the status the page was drawn with changes, the fragment answers
  ``HX-Refresh`` so the report and the buttons follow.
- A refused change (a wrong state, no ``shop.address``) re-renders the page with the
  service's message and status 422; an unknown id is a 404 page.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.campaigns import service
from courriel.marketing.campaigns.recent import campaign_totals
from courriel.marketing.campaigns.report import CampaignReport, Counts, campaign_report
from courriel.marketing.lists import list_names
from courriel.marketing.segments import service as segments_service
from courriel.marketing.templates.service import list_templates
from courriel.web.app import Services
from courriel.web.dashboard.access import allow
from courriel.web.dashboard.campaigns_wizard import TEMPLATE_PAGE
from courriel.web.dashboard.ids import parse_cursor
from courriel.web.dashboard.render import page

__all__ = ["ACTIVE", "ROUTES", "chart_data"]

ACTIVE = frozenset({"scheduled", "sending", "testing"})  # the sender still has work
PAGE = 100
_VERBS = {"pause": service.pause, "resume": service.resume, "cancel": service.cancel}


def _currency(services: Services) -> str:
    return str(services.template_shop.get("currency", "") or "")


@get("/campaigns", **allow("marketing"))
async def campaigns_list(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """Campaigns by id with their status, audience, sent, rates and revenue."""
    after = parse_cursor(request.query_params.get("after"))
    if after is None:
        return page(
            request,
            "error.html",
            status=422,
            active="campaigns",
            title="Bad link",
            message="This page link is not valid: start again from the list of campaigns.",
        )
    async with services.db.read() as conn:
        found = await service.list_campaigns(conn, after_id=after, limit=PAGE)
        totals = await campaign_totals(conn, [campaign.id for campaign in found])
    rows: list[tuple[service.Campaign, Counts]] = [(c, totals[c.id]) for c in found]
    following = found[-1].id if len(found) == PAGE else None
    return page(
        request,
        "campaigns/list.html",
        active="campaigns",
        title="Campaigns",
        rows=rows,
        following=following,
        currency=_currency(services),
    )


def chart_data(report: CampaignReport) -> dict[str, Any]:
    """What static/campaigns.js draws: the funnel and the per-variant rates."""
    total = report.total
    return {
        "funnel": {
            "labels": ["Audience", "Sent", "Delivered", "Opened", "Clicked", "Ordered"],
            "values": [
                total.recipients,
                total.sent,
                total.delivered,
                total.unique_opens,
                total.unique_clicks,
                total.orders,
            ],
        },
        "variants": {
            "labels": [v.label for v in report.variants],
            "open_rate": [round(100 * v.rates()["open_rate"], 2) for v in report.variants],
            "click_rate": [round(100 * v.rates()["click_rate"], 2) for v in report.variants],
        },
    }


async def _detail(
    request: Request[Any, Any, Any],
    services: Services,
    campaign_id: int,
    *,
    error: str = "",
    status: int = 200,
) -> Response[str]:
    try:
        async with services.db.read() as conn:
            campaign = await service.get_campaign(conn, campaign_id)
            progress = await service.progress(conn, campaign_id)
            report = await campaign_report(conn, campaign_id)
            names = {("list", item.id): item.name for item in await list_names(conn)}
            templates = {t.id: t.name for t in await list_templates(conn, limit=TEMPLATE_PAGE)}
    except NotFound:
        return _not_found(request, campaign_id)
    segs = await segments_service.list(services.db)
    names.update({("segment", seg.id): seg.name for seg in segs})
    return page(
        request,
        "campaigns/detail.html",
        status=status,
        active="campaigns",
        title=campaign.name,
        campaign=campaign,
        campaign_id=campaign_id,
        progress=progress,
        report=report,
        active_states=ACTIVE,
        currency=_currency(services),
        # "<" escaped so no value can close the <script type="application/json"> block.
        chart_json=json.dumps(chart_data(report)).replace("<", "\\u003c"),
        audience_names=names,
        template_names=templates,
        error=error,
    )


def _not_found(request: Request[Any, Any, Any], campaign_id: int) -> Response[str]:
    return page(
        request,
        "error.html",
        status=404,
        active="campaigns",
        title="No such campaign",
        message=f"There is no campaign {campaign_id}.",
    )


@get("/campaigns/{campaign_id:int}", **allow("marketing"))
async def campaign_page(
    request: Request[Any, Any, Any], services: Services, campaign_id: FromPath[int]
) -> Response[str]:
    """One campaign: its settings, progress (polled while sending) and report."""
    return await _detail(request, services, campaign_id)


@get("/campaigns/{campaign_id:int}/progress", **allow("marketing"))
async def progress_fragment(
    request: Request[Any, Any, Any],
    services: Services,
    campaign_id: FromPath[int],
    shown: str = "",
) -> Response[str]:
    """The progress numbers (htmx polls this every 2 s while the sender has work)."""
    try:
        async with services.db.read() as conn:
            progress = await service.progress(conn, campaign_id)
    except NotFound:
        return _not_found(request, campaign_id)
    headers = {"HX-Refresh": "true"} if shown and shown != progress.status else None
    return page(
        request,
        "campaigns/_progress.html",
        headers=headers,
        campaign_id=campaign_id,
        progress=progress,
        active_states=ACTIVE,
    )


async def _change(
    request: Request[Any, Any, Any], services: Services, campaign_id: int, verb: str
) -> Response[Any]:
    now = services.clock()
    try:
        async with services.db.write() as conn:
            if verb == "send":
                await service.send_campaign(
                    conn, campaign_id, now=now, shop_address=services.shop_address
                )
            else:
                await _VERBS[verb](conn, campaign_id, now=now)
    except NotFound:
        return _not_found(request, campaign_id)
    except InvalidInput as exc:
        return await _detail(request, services, campaign_id, error=str(exc), status=422)
    return Redirect(path=f"/campaigns/{campaign_id}", status_code=303)


@post("/campaigns/{campaign_id:int}/send", **allow("marketing"))
async def send(
    request: Request[Any, Any, Any], services: Services, campaign_id: FromPath[int]
) -> Response[Any]:
    """Schedule a draft (at its time, else now)."""
    return await _change(request, services, campaign_id, "send")


@post("/campaigns/{campaign_id:int}/pause", **allow("marketing"))
async def pause(
    request: Request[Any, Any, Any], services: Services, campaign_id: FromPath[int]
) -> Response[Any]:
    """Pause after the batch in flight."""
    return await _change(request, services, campaign_id, "pause")


@post("/campaigns/{campaign_id:int}/resume", **allow("marketing"))
async def resume(
    request: Request[Any, Any, Any], services: Services, campaign_id: FromPath[int]
) -> Response[Any]:
    """Carry on where it stopped."""
    return await _change(request, services, campaign_id, "resume")


@post("/campaigns/{campaign_id:int}/cancel", **allow("marketing"))
async def cancel(
    request: Request[Any, Any, Any], services: Services, campaign_id: FromPath[int]
) -> Response[Any]:
    """Stop for good (copies sent stay sent)."""
    return await _change(request, services, campaign_id, "cancel")


ROUTES = [campaigns_list, campaign_page, progress_fragment, send, pause, resume, cancel]
