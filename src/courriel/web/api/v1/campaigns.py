"""``/api/v1/campaigns``: create campaigns, drive their state, read progress and reports.

The API only changes a campaign's state; the campaign sender of a node running the
delivery role sends it. A bad field answers 422 with the field named as a path into the
request body (``variants/0/template_id``, ``audience/1``, ``ab/metric``); a wrong
transition answers 422 with ``field: "status"``; sending without ``shop.address``
configured answers 422 with ``field: "shop.address"``. Reports are read from the
pre-aggregated counters (never counted per request).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import get, post
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler

from courriel.errors import InvalidInput
from courriel.marketing.campaigns import service
from courriel.marketing.campaigns.report import campaign_report
from courriel.web.api.v1.common import After, Limit, aware, page
from courriel.web.app import Services
from courriel.web.auth import requires

__all__ = ["ROUTES", "AbIn", "AudienceIn", "CampaignIn", "SendIn", "VariantIn"]

_TAG = "campaigns"


class VariantIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """One version of the campaign: a subject and a template."""

    subject: str
    template_id: int


class AudienceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A list or a segment whose contacts receive the campaign."""

    kind: Literal["list", "segment"]
    id: int


class AbIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """An A/B test: a sample gets the variants, the winner goes to the rest."""

    sample_percent: int = service.AB_DEFAULTS.sample_percent
    wait_seconds: int = service.AB_DEFAULTS.wait_seconds
    metric: Literal["clicks", "revenue"] = service.AB_DEFAULTS.metric


class CampaignIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A campaign to create (a draft)."""

    name: str
    from_address: str
    variants: list[VariantIn]  # one, or 2 to 10 with ``ab``
    audience: list[AudienceIn]
    from_name: str | None = None
    reply_to: str | None = None
    preheader: str | None = None
    scheduled_at: datetime | None = None  # RFC 3339 with offset; default: when sent
    ab: AbIn | None = None


class SendIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """When to send: ``at``, else the campaign's ``scheduled_at``, else now."""

    at: datetime | None = None


def _with_progress(campaign: service.Campaign, progress: service.Progress) -> dict[str, Any]:
    return {**campaign.to_dict(), "progress": progress.to_dict()}


def _field(exc: InvalidInput) -> InvalidInput:
    """The service names variants' templates ``variants/N/template``; the body says template_id."""
    field = exc.field or ""
    if field.startswith("variants/") and field.endswith("/template"):
        return InvalidInput(str(exc), field=f"{field}_id")
    return exc


@get(
    "/api/v1/campaigns",
    summary="Campaigns by id",
    tags=[_TAG],
    **requires("campaigns:read"),
)
async def index(services: Services, after: After = 0, limit: Limit = 100) -> dict[str, Any]:
    """Campaigns by id (without progress: ``GET /api/v1/campaigns/{id}`` has it)."""
    async with services.db.read() as conn:
        found = await service.list_campaigns(conn, after_id=after, limit=limit)
    return page(found, limit=limit, key=lambda c: c.id, render=lambda c: c.to_dict())


@post(
    "/api/v1/campaigns",
    summary="Create a draft campaign",
    tags=[_TAG],
    **requires("campaigns:write"),
)
async def create(services: Services, data: JSONBody[CampaignIn]) -> dict[str, Any]:
    """Create a draft campaign (422 naming the field when one is wrong)."""
    scheduled = None
    if data.scheduled_at is not None:
        scheduled = aware(data.scheduled_at, field="scheduled_at")
    ab = None
    if data.ab is not None:
        ab = service.AbSettings(
            sample_percent=data.ab.sample_percent,
            wait_seconds=data.ab.wait_seconds,
            metric=data.ab.metric,
        )
    async with services.db.write() as conn:
        try:
            made = await service.create_campaign(
                conn,
                name=data.name,
                variants=[(v.subject, v.template_id) for v in data.variants],
                audience=[(a.kind, a.id) for a in data.audience],
                from_address=data.from_address,
                from_name=data.from_name,
                reply_to=data.reply_to,
                preheader=data.preheader,
                scheduled_at=scheduled,
                ab=ab,
                now=services.clock(),
            )
        except InvalidInput as exc:
            raise _field(exc) from exc
        return _with_progress(made, await service.progress(conn, made.id))


@get(
    "/api/v1/campaigns/{campaign_id:int}",
    summary="One campaign with its variants and progress",
    tags=[_TAG],
    **requires("campaigns:read"),
)
async def read(services: Services, campaign_id: FromPath[int]) -> dict[str, Any]:
    """One campaign with its variants and progress (recipients frozen, sent, pending)."""
    async with services.db.read() as conn:
        found = await service.get_campaign(conn, campaign_id)
        return _with_progress(found, await service.progress(conn, campaign_id))


@post(
    "/api/v1/campaigns/{campaign_id:int}/send",
    summary="Schedule a draft for sending (at a time, or now)",
    tags=[_TAG],
    status_code=200,
    **requires("campaigns:write"),
)
async def send(
    services: Services, campaign_id: FromPath[int], data: JSONBody[SendIn | None] = None
) -> dict[str, Any]:
    """Schedule a draft: at ``at``, else at its ``scheduled_at``, else now."""
    at = None
    if data is not None and data.at is not None:
        at = aware(data.at, field="at")
    async with services.db.write() as conn:
        changed = await service.send_campaign(
            conn, campaign_id, at=at, now=services.clock(), shop_address=services.shop_address
        )
        return _with_progress(changed, await service.progress(conn, campaign_id))


async def _state(services: Services, campaign_id: int, verb: str) -> dict[str, Any]:
    change = {"pause": service.pause, "resume": service.resume, "cancel": service.cancel}[verb]
    async with services.db.write() as conn:
        changed = await change(conn, campaign_id, now=services.clock())
        return _with_progress(changed, await service.progress(conn, campaign_id))


@post(
    "/api/v1/campaigns/{campaign_id:int}/pause",
    summary="Pause sending after the batch in flight",
    tags=[_TAG],
    status_code=200,
    **requires("campaigns:write"),
)
async def pause(services: Services, campaign_id: FromPath[int]) -> dict[str, Any]:
    """Pause sending after the batch in flight (422, field "status", when not sending)."""
    return await _state(services, campaign_id, "pause")


@post(
    "/api/v1/campaigns/{campaign_id:int}/resume",
    summary="Resume a paused campaign where it stopped",
    tags=[_TAG],
    status_code=200,
    **requires("campaigns:write"),
)
async def resume(services: Services, campaign_id: FromPath[int]) -> dict[str, Any]:
    """Resume a paused campaign where it stopped (422, field "status", when not paused)."""
    return await _state(services, campaign_id, "resume")


@post(
    "/api/v1/campaigns/{campaign_id:int}/cancel",
    summary="Cancel a campaign for good (copies sent stay sent)",
    tags=[_TAG],
    status_code=200,
    **requires("campaigns:write"),
)
async def cancel(services: Services, campaign_id: FromPath[int]) -> dict[str, Any]:
    """Cancel a campaign for good (422, field "status", when sent or cancelled)."""
    return await _state(services, campaign_id, "cancel")


@get(
    "/api/v1/campaigns/{campaign_id:int}/report",
    summary="Counters per variant and in total, and the most clicked links",
    tags=[_TAG],
    **requires("campaigns:read"),
)
async def report(services: Services, campaign_id: FromPath[int]) -> dict[str, Any]:
    """Counters per variant and in total (pre-aggregated), and the most clicked links."""
    async with services.db.read() as conn:
        return (await campaign_report(conn, campaign_id)).to_dict()


ROUTES: list[ControllerRouterHandler] = [
    index,
    create,
    read,
    send,
    pause,
    resume,
    cancel,
    report,
]
