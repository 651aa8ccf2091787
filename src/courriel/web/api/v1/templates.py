"""``/api/v1/templates``: email templates (MJML or HTML with Jinja) and their previews.

A template is compiled when it is saved: a source that does not compile, uses an unknown
variable or fails its trial render answers 422 with ``field: "source"`` and the line and
column in ``detail`` ("line 3, column 12: …"). Listing pages by id and leaves out the
sources (``GET /api/v1/templates/{id}`` has them).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import delete, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler

from courriel.marketing.templates.preview import preview_template
from courriel.marketing.templates.service import (
    add_template,
    delete_template,
    get_template,
    list_templates,
    template_to_dict,
    update_template,
)
from courriel.web.api.v1.common import After, Limit, page
from courriel.web.app import Services
from courriel.web.auth import requires

__all__ = ["ROUTES", "PreviewIn", "TemplateIn", "TemplateUpdate"]

_TAG = "templates"


class TemplateIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A template to create."""

    name: str
    source: str
    kind: Literal["mjml", "html"] = "html"


class TemplateUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A template's new source (and kind)."""

    source: str
    kind: Literal["mjml", "html"] | None = None


class PreviewIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Whom to preview a template for: a contact (else the sample one) and data."""

    contact_id: int | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)  # a transactional payload
    subject: str = ""  # a subject to render along (Jinja too)


@get(
    "/api/v1/templates",
    summary="Templates by id, without their sources",
    tags=[_TAG],
    **requires("templates:read"),
)
async def index(services: Services, after: After = 0, limit: Limit = 100) -> dict[str, Any]:
    """Templates by id, without their sources."""
    async with services.db.read() as conn:
        found = await list_templates(conn, after, limit)
    return page(
        found,
        limit=limit,
        key=lambda t: t.id,
        render=lambda t: template_to_dict(t, with_source=False),
    )


@post(
    "/api/v1/templates",
    summary="Create a template (422 with line and column when it does not compile)",
    tags=[_TAG],
    **requires("templates:write"),
)
async def create(services: Services, data: JSONBody[TemplateIn]) -> dict[str, Any]:
    """Create a template (422 with line and column when it does not compile; 409: name taken)."""
    async with services.db.write() as conn:
        made = await add_template(
            conn, name=data.name, kind=data.kind, source=data.source, now=services.clock()
        )
    return template_to_dict(made)


@get(
    "/api/v1/templates/{template_id:int}",
    summary="One template with its source and compiled HTML",
    tags=[_TAG],
    **requires("templates:read"),
)
async def read(services: Services, template_id: FromPath[int]) -> dict[str, Any]:
    """One template with its source and compiled HTML."""
    async with services.db.read() as conn:
        return template_to_dict(await get_template(conn, template_id))


@put(
    "/api/v1/templates/{template_id:int}",
    summary="Replace a template's source (recompiled)",
    tags=[_TAG],
    **requires("templates:write"),
)
async def replace(
    services: Services, template_id: FromPath[int], data: JSONBody[TemplateUpdate]
) -> dict[str, Any]:
    """Replace a template's source (and kind); it is compiled again."""
    async with services.db.write() as conn:
        updated = await update_template(
            conn, template_id, source=data.source, kind=data.kind, now=services.clock()
        )
    return template_to_dict(updated)


@delete(
    "/api/v1/templates/{template_id:int}",
    summary="Delete a template no campaign uses",
    tags=[_TAG],
    **requires("templates:write"),
)
async def remove(services: Services, template_id: FromPath[int]) -> None:
    """Delete a template (422, field "template", when a campaign uses it)."""
    async with services.db.write() as conn:
        await delete_template(conn, template_id)


@post(
    "/api/v1/templates/{template_id:int}/preview",
    summary="Render a template for a contact (or the sample contact) with sample products",
    tags=[_TAG],
    status_code=200,
    **requires("templates:read"),
)
async def preview(
    services: Services, template_id: FromPath[int], data: JSONBody[PreviewIn]
) -> dict[str, Any]:
    """Render a template for a contact (or the sample contact) with sample products."""
    async with services.db.read() as conn:
        template = await get_template(conn, template_id)
        rendered = await preview_template(
            conn,
            template,
            contact_id=data.contact_id,
            subject=data.subject,
            data=data.data,
            public_url=services.public_url,
        )
    return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}


ROUTES: list[ControllerRouterHandler] = [index, create, read, replace, remove, preview]
