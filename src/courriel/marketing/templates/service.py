"""The ``templates`` rows: add, update, read, list and delete email templates.

Owns the stored template: its unique name, kind ("mjml" | "html"), the source the user
wrote and the HTML it compiles to (:func:`.compile.compile_template`, Jinja still in it).
Functions take an open ``AsyncConnection`` inside the caller's transaction.

Invariants:
- A stored template always compiled: saving compiles first (in a worker thread, off the
  event loop) and writes nothing when that fails.
- A template a campaign uses cannot be deleted (``campaign_variants.template_id`` is
  ``ON DELETE RESTRICT``): :func:`delete_template` says which campaign holds it.
- A template a campaign is sending (scheduled, sending or testing) cannot be updated: the
  sender caches each variant's renderer, so an edit would reach only some recipients.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing.normalise import normalise_text
from courriel.marketing.templates.compile import KINDS, compile_template
from courriel.storage.models.campaigns import campaign_variants, campaigns, templates

__all__ = [
    "Template",
    "add_template",
    "delete_template",
    "get_template",
    "get_template_by_name",
    "kind_of",
    "list_templates",
    "template_to_dict",
    "update_template",
]

Kind = Literal["mjml", "html"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    """One stored template."""

    id: int
    name: str
    kind: Kind
    source: str  # what the user wrote: MJML or HTML, with Jinja
    html: str  # the source compiled to HTML, Jinja still in it (what a Renderer takes)
    created_at: datetime
    updated_at: datetime


def kind_of(kind: str) -> Kind:
    """Check a template kind.

    Raises:
        InvalidInput: not "mjml" nor "html" (field "kind").
    """
    if kind not in KINDS:
        raise InvalidInput("a template is mjml or html", field="kind")
    return cast(Kind, kind)


def _check_name(name: str) -> str:
    text = normalise_text(name, field="name", max_length=128)
    if text is None:
        raise InvalidInput("a template needs a name", field="name")
    return text


def _to_template(row: Any) -> Template:
    return Template(
        id=int(row.id),
        name=row.name,
        kind=kind_of(row.kind),
        source=row.source,
        html=row.html,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _compiled(kind: str, source: str) -> str:
    return await asyncio.to_thread(compile_template, kind_of(kind), source)


async def add_template(
    conn: AsyncConnection, *, name: str, kind: str, source: str, now: datetime
) -> Template:
    """Compile and store a new template.

    Raises:
        InvalidInput: bad name or kind; a source that does not compile (field "source",
            "line L, column C: …").
        AlreadyExists: a template has this name.
    """
    clean = _check_name(name)
    if await _find(conn, clean) is not None:
        raise AlreadyExists(f"template {clean!r} exists already")
    html = await _compiled(kind, source)
    values = {"name": clean, "kind": kind, "source": source, "html": html}
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                insert(templates)
                .values(**values, created_at=now, updated_at=now)
                .returning(templates.c.id)
            )
    except IntegrityError as exc:
        raise AlreadyExists(f"template {clean!r} exists already") from exc
    return Template(id=int(result.scalar_one()), created_at=now, updated_at=now, **values)  # type: ignore[arg-type]


async def update_template(
    conn: AsyncConnection,
    template_id: int,
    *,
    source: str,
    kind: str | None = None,
    now: datetime,
) -> Template:
    """Replace a template's source (and kind, when given) and recompile it.

    Raises:
        NotFound: no such template.
        InvalidInput: as :func:`add_template`; a campaign using it is scheduled, sending
            or testing (field "template").
    """
    current = await get_template(conn, template_id)
    if await _sending_campaign(conn, template_id) is not None:
        raise InvalidInput(
            "used by a campaign that is sending; wait or cancel it", field="template"
        )
    new_kind = kind_of(kind) if kind is not None else current.kind
    html = await _compiled(new_kind, source)
    await conn.execute(
        update(templates)
        .where(templates.c.id == template_id)
        .values(kind=new_kind, source=source, html=html, updated_at=now)
    )
    return Template(
        id=current.id,
        name=current.name,
        kind=new_kind,
        source=source,
        html=html,
        created_at=current.created_at,
        updated_at=now,
    )


async def _sending_campaign(conn: AsyncConnection, template_id: int) -> int | None:
    """A campaign in flight whose variant uses the template, if any."""
    query = (
        select(campaigns.c.id)
        .join(campaign_variants, campaign_variants.c.campaign_id == campaigns.c.id)
        .where(
            campaign_variants.c.template_id == template_id,
            campaigns.c.status.in_(("scheduled", "sending", "testing")),
        )
        .limit(1)
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def _find(conn: AsyncConnection, name: str) -> Template | None:
    row = (await conn.execute(select(templates).where(templates.c.name == name))).first()
    return None if row is None else _to_template(row)


async def get_template(conn: AsyncConnection, template_id: int) -> Template:
    """One template by id.

    Raises:
        NotFound: no such template.
    """
    row = (await conn.execute(select(templates).where(templates.c.id == template_id))).first()
    if row is None:
        raise NotFound(f"no template {template_id}")
    return _to_template(row)


async def get_template_by_name(conn: AsyncConnection, name: str) -> Template:
    """One template by name.

    Raises:
        NotFound: no such template.
    """
    found = await _find(conn, name.strip())
    if found is None:
        raise NotFound(f"no template {name!r}")
    return found


async def list_templates(conn: AsyncConnection, after: int = 0, limit: int = 100) -> list[Template]:
    """Templates by id after the cursor ``after``.

    Raises:
        InvalidInput: ``limit`` outside 1–1000.
    """
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be 1 to 1000", field="limit")
    rows = await conn.execute(
        select(templates).where(templates.c.id > after).order_by(templates.c.id).limit(limit)
    )
    return [_to_template(row) for row in rows]


async def delete_template(conn: AsyncConnection, template_id: int) -> None:
    """Delete a template no campaign uses.

    Raises:
        NotFound: no such template.
        InvalidInput: a campaign uses it (field "template").
    """
    used = (
        await conn.execute(
            select(campaign_variants.c.campaign_id)
            .where(campaign_variants.c.template_id == template_id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if used is not None:
        raise InvalidInput(f"campaign {used} uses this template", field="template")
    try:
        async with conn.begin_nested():
            result = await conn.execute(delete(templates).where(templates.c.id == template_id))
    except IntegrityError as exc:  # a campaign took it meanwhile (RESTRICT)
        raise InvalidInput("a campaign uses this template", field="template") from exc
    if result.rowcount == 0:
        raise NotFound(f"no template {template_id}")


def template_to_dict(item: Template, *, with_source: bool = True) -> dict[str, Any]:
    """The template as a JSON-able dict (``source`` and ``html`` when ``with_source``)."""
    body: dict[str, Any] = {
        "id": item.id,
        "name": item.name,
        "kind": item.kind,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }
    if with_source:
        body["source"] = item.source
        body["html"] = item.html
    return body
