"""The dashboard's new-campaign wizard: audience (with its live count), template, content,
A/B variants and schedule, on one page of numbered sections.

Owns only the form: parsing it into the arguments of
:func:`courriel.marketing.campaigns.service.create_campaign` and
:func:`~courriel.marketing.campaigns.service.send_campaign` (the functions the REST API and
``courriel campaign create|send`` call), and re-rendering it with the service's message
(422) when one is refused.

Invariants:
- Creating and scheduling run in ONE write transaction: a refused send (no
  ``shop.address``, a bad time) leaves no draft behind.
- The live count is :func:`courriel.marketing.campaigns.audience.count_audience`, the same
  condition the sender's freeze applies (subscribed members or segment matches, email
  consent subscribed, not suppressed).
- Times typed in the form are UTC (the label says so); a past time sends at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from courriel.errors import InvalidInput
from courriel.marketing.campaigns import service
from courriel.marketing.campaigns.audience import count_audience
from courriel.marketing.lists import list_names
from courriel.marketing.segments import service as segments_service
from courriel.marketing.templates.service import list_templates
from courriel.web.app import Services
from courriel.web.dashboard.access import allow
from courriel.web.dashboard.ids import parse_id
from courriel.web.dashboard.render import page

__all__ = ["ROUTES", "Choice", "parse_audience"]

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
TEMPLATE_PAGE = 500  # templates offered in the picker (the service pages by id)
# The service's field names -> the form's input ids (to mark the input aria-invalid).
_FIELDS = {
    "variants/0/subject": "subject_a",
    "variants/1/subject": "subject_b",
    "variants/0/template": "template_a",
    "variants/1/template": "template_b",
    "variants": "ab",
    "ab/sample_percent": "ab_sample",
    "ab/wait_seconds": "ab_wait_hours",
    "ab/metric": "ab_metric",
    "scheduled_at": "at",
    "shop.address": "when",
}


@dataclass(frozen=True, slots=True)
class Choice:
    """A list or segment offered as audience."""

    key: str  # "list:3" | "segment:5": the checkbox's name
    kind: str
    id: int
    name: str


def parse_audience(values: dict[str, str] | Any) -> list[tuple[str, int]]:
    """The ("list" | "segment", id) entries ticked in a form or query string.

    Raises:
        InvalidInput: a ``list:`` or ``segment:`` key whose id no row can have (outside
            1..2^63-1): the same answer as for an unknown id (field ``audience``).
    """
    entries: list[tuple[str, int]] = []
    for key in values:
        kind, colon, ident = str(key).partition(":")
        if kind not in ("list", "segment") or not colon:
            continue
        found = parse_id(ident)
        if found is None:
            raise InvalidInput(f"no {kind} {ident[:40]}", field="audience")
        entries.append((kind, found))
    return entries


async def _choices(services: Services) -> tuple[list[Choice], list[Any]]:
    # Names only: the live count below says how many contacts the ticked ones reach, so
    # loading the page counts no list's members (design.md, nothing counted on load).
    async with services.db.read() as conn:
        found_lists = await list_names(conn)
        templates = await list_templates(conn, limit=TEMPLATE_PAGE)
    choices = [Choice(f"list:{item.id}", "list", item.id, item.name) for item in found_lists]
    choices += [
        Choice(f"segment:{seg.id}", "segment", seg.id, seg.name)
        for seg in await segments_service.list(services.db)
    ]
    return choices, templates


async def _form_page(
    request: Request[Any, Any, Any],
    services: Services,
    values: dict[str, str],
    *,
    error: InvalidInput | None = None,
) -> Response[str]:
    choices, templates = await _choices(services)
    try:
        audience = parse_audience(values)
    except InvalidInput as exc:
        audience, error = [], error or exc
    async with services.db.read() as conn:
        count = await count_audience(conn, audience, now=services.clock())
    field = (error.field or "") if error else ""
    invalid = "audience" if field.startswith("audience") else _FIELDS.get(field, field)
    return page(
        request,
        "campaigns/new.html",
        status=422 if error else 200,
        active="campaigns",
        title="New campaign",
        choices=choices,
        templates=templates,
        values=values,
        count=count,
        picked=bool(audience),
        error=str(error) if error else "",
        invalid=invalid,
        shop_address=services.shop_address,
        ab_defaults=service.AB_DEFAULTS,
    )


@get("/campaigns/new", **allow("marketing"))
async def new_campaign(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The wizard, empty (or with ?list:ID / ?segment:ID ticked)."""
    values = {str(k): str(v) for k, v in request.query_params.items()}
    values.setdefault("when", "now")
    values.setdefault("ab_sample", str(service.AB_DEFAULTS.sample_percent))
    values.setdefault("ab_wait_hours", f"{service.AB_DEFAULTS.wait_seconds / 3600:g}")
    values.setdefault("ab_metric", service.AB_DEFAULTS.metric)
    return await _form_page(request, services, values)


@get("/campaigns/audience-count", **allow("marketing"))
async def audience_count(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The live count of the ticked lists and segments (an htmx fragment)."""
    try:
        audience = parse_audience(dict(request.query_params.items()))
    except InvalidInput as exc:
        return page(request, "campaigns/_count.html", status=422, count_error=str(exc))
    async with services.db.read() as conn:
        count = await count_audience(conn, audience, now=services.clock())
    return page(request, "campaigns/_count.html", count=count, picked=bool(audience))


def _id(value: str | None, field: str, what: str) -> int:
    found = parse_id(value)
    if found is None:
        raise InvalidInput(what, field=field)
    return found


def _percent(value: str | None) -> int:
    text = (value or "").strip()
    if not text:
        return service.AB_DEFAULTS.sample_percent
    # At most 3 digits: the service's 1..99 check then names the range.
    if not text.isascii() or not text.isdigit() or len(text) > 3:
        raise InvalidInput("the test size is a percentage from 1 to 99", field="ab_sample")
    return int(text)


def _wait_seconds(value: str | None) -> int:
    """Hours typed in the form as seconds; the service bounds them (0..30 days)."""
    text = (value or "").strip()
    if not text:
        return service.AB_DEFAULTS.wait_seconds
    try:
        hours = float(text[:32])
    except ValueError:
        hours = math.nan
    # float() also reads "inf", "nan" and "1e400" (inf): none is a duration.
    if not math.isfinite(hours) or not 0 <= hours * 3600 <= service.AB_MAX_WAIT_SECONDS:
        days = service.AB_MAX_WAIT_SECONDS // 86_400
        raise InvalidInput(
            f"the test duration is a number of hours, 0 to {days * 24}", field="ab_wait_hours"
        )
    return round(hours * 3600)


def _ab(data: dict[str, str]) -> service.AbSettings | None:
    if data.get("ab") != "on":
        return None
    # Empty fields take the service's defaults (AB_DEFAULTS, as the API and the CLI).
    metric = data.get("ab_metric") or service.AB_DEFAULTS.metric
    if metric not in ("clicks", "revenue"):
        raise InvalidInput("the winner is picked by clicks or by revenue", field="ab_metric")
    return service.AbSettings(
        sample_percent=_percent(data.get("ab_sample")),
        wait_seconds=_wait_seconds(data.get("ab_wait_hours")),
        metric="revenue" if metric == "revenue" else "clicks",
    )


def _variants(data: dict[str, str], ab: service.AbSettings | None) -> list[tuple[str, int]]:
    template_a = _id(data.get("template_a"), "template_a", "choose a template")
    subject_a = data.get("subject_a", "")
    variants = [(subject_a, template_a)]
    if ab is not None:
        subject_b = (data.get("subject_b") or "").strip() or subject_a
        raw_b = (data.get("template_b") or "").strip()
        template_b = _id(raw_b, "template_b", "choose a template") if raw_b else template_a
        if (subject_b, template_b) == (subject_a.strip(), template_a):
            raise InvalidInput(
                "variant B must differ from A in its subject or its template", field="subject_b"
            )
        variants.append((subject_b, template_b))
    return variants


def _when(data: dict[str, str]) -> tuple[str, datetime | None]:
    when = data.get("when", "now")
    if when not in ("now", "at", "draft"):
        raise InvalidInput("choose when to send", field="when")
    if when != "at":
        return when, None
    raw = (data.get("at") or "").strip()
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("give the date and time to send (UTC)", field="at") from None
    return when, at if at.tzinfo else at.replace(tzinfo=UTC)


@post("/campaigns/new", **allow("marketing"))
async def create_campaign(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[Any]:
    """Create the campaign (a draft), and schedule it unless kept as a draft."""
    values = {k: v for k, v in data.items() if k != "_csrf"}
    now = services.clock()
    try:
        audience = parse_audience(values)
        if not audience:
            raise InvalidInput("choose at least one list or segment", field="audience")
        ab = _ab(values)
        variants = _variants(values, ab)
        when, at = _when(values)
        async with services.db.write() as conn:
            made = await service.create_campaign(
                conn,
                name=values.get("name", ""),
                variants=variants,
                audience=audience,
                from_address=values.get("from_address", ""),
                from_name=values.get("from_name") or None,
                reply_to=values.get("reply_to") or None,
                preheader=values.get("preheader") or None,
                scheduled_at=at,
                ab=ab,
                now=now,
            )
            if when != "draft":
                await service.send_campaign(
                    conn, made.id, at=at, now=now, shop_address=services.shop_address
                )
    except InvalidInput as exc:
        return await _form_page(request, services, values, error=exc)
    return Redirect(path=f"/campaigns/{made.id}", status_code=303)


ROUTES = [new_campaign, audience_count, create_campaign]
