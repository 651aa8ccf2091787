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
from courriel.marketing.lists import list_lists
from courriel.marketing.segments import service as segments_service
from courriel.marketing.templates.service import list_templates
from courriel.web.app import Services
from courriel.web.dashboard.access import allow
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
    note: str  # "120 subscribed" for lists; "" for segments


def parse_audience(values: dict[str, str] | Any) -> list[tuple[str, int]]:
    """The ("list" | "segment", id) entries ticked in a form or query string."""
    entries: list[tuple[str, int]] = []
    for key in values:
        kind, _, ident = str(key).partition(":")
        if kind in ("list", "segment") and ident.isdigit():
            entries.append((kind, int(ident)))
    return entries


async def _choices(services: Services) -> tuple[list[Choice], list[Any]]:
    async with services.db.read() as conn:
        found_lists = await list_lists(conn)
        templates = await list_templates(conn, limit=TEMPLATE_PAGE)
    choices = [
        Choice(f"list:{item.id}", "list", item.id, item.name, f"{item.subscribed:,} subscribed")
        for item in found_lists
    ]
    choices += [
        Choice(f"segment:{seg.id}", "segment", seg.id, seg.name, "")
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
    audience = parse_audience(values)
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
    )


@get("/campaigns/new", **allow("marketing"))
async def new_campaign(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The wizard, empty (or with ?list:ID / ?segment:ID ticked)."""
    values = {str(k): str(v) for k, v in request.query_params.items()}
    values.setdefault("when", "now")
    values.setdefault("ab_sample", "20")
    values.setdefault("ab_wait_hours", "4")
    return await _form_page(request, services, values)


@get("/campaigns/audience-count", **allow("marketing"))
async def audience_count(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The live count of the ticked lists and segments (an htmx fragment)."""
    audience = parse_audience(dict(request.query_params.items()))
    async with services.db.read() as conn:
        count = await count_audience(conn, audience, now=services.clock())
    return page(request, "campaigns/_count.html", count=count, picked=bool(audience))


def _int(value: str | None, field: str, what: str) -> int:
    text = (value or "").strip()
    if not text.lstrip("-").isdigit():
        raise InvalidInput(what, field=field)
    return int(text)


def _ab(data: dict[str, str]) -> service.AbSettings | None:
    if data.get("ab") != "on":
        return None
    # Empty fields take the API's defaults (20 %, 4 h, clicks).
    hours = (data.get("ab_wait_hours") or "").strip() or "4"
    try:
        wait = round(float(hours) * 3600)
    except ValueError:
        raise InvalidInput(
            "the test duration is a number of hours", field="ab_wait_hours"
        ) from None
    metric = data.get("ab_metric") or "clicks"
    if metric not in ("clicks", "revenue"):
        raise InvalidInput("the winner is picked by clicks or by revenue", field="ab_metric")
    return service.AbSettings(
        sample_percent=_int(
            (data.get("ab_sample") or "").strip() or "20",
            "ab_sample",
            "the test size is a percentage",
        ),
        wait_seconds=wait,
        metric="revenue" if metric == "revenue" else "clicks",
    )


def _variants(data: dict[str, str], ab: service.AbSettings | None) -> list[tuple[str, int]]:
    template_a = _int(data.get("template_a"), "template_a", "choose a template")
    subject_a = data.get("subject_a", "")
    variants = [(subject_a, template_a)]
    if ab is not None:
        subject_b = (data.get("subject_b") or "").strip() or subject_a
        raw_b = (data.get("template_b") or "").strip()
        template_b = _int(raw_b, "template_b", "choose a template") if raw_b else template_a
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
