"""One campaign copy: what a template sees of a recipient, and the copy rendered from it.

Shared by the campaign sender (on its event loop, or in its render processes, see
:mod:`courriel.marketing.campaigns.pool`) and the view-in-browser page (view.py), so a copy
reads the same wherever it is made.

Invariant: nothing here reads or writes the database except :func:`template_source`
and :func:`load_renderer`, which read a template.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.marketing.campaigns.message import (
    Author,
    Content,
    Copy,
    CopyUrls,
    Footer,
    build_copy,
    copy_urls,
    feedback_id,
)
from courriel.marketing.campaigns.service import Campaign, Variant
from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.storage.models.campaigns import campaign_recipients, templates
from courriel.storage.models.marketing import contacts

__all__ = [
    "RECIPIENT_COLUMNS",
    "Book",
    "CopyJob",
    "CopyRenderer",
    "Recommend",
    "Recommender",
    "RenderInput",
    "RendererFactory",
    "SenderSettings",
    "load_renderer",
    "no_recommendations",
    "recipient_contact",
    "render_copy",
    "template_source",
]

Recommend = Callable[[str, int], Sequence[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderInput:
    """What a template sees of one recipient."""

    contact: Mapping[str, Any]  # id, email, names, location, attributes
    urls: CopyUrls
    recommendations: Recommend


class CopyRenderer(Protocol):
    """One variant's template, compiled once, rendered per recipient."""

    @property
    def recommendation_calls(self) -> frozenset[tuple[str, int]]:
        """The ``recommendations(kind, n)`` calls the template makes (to prefetch)."""
        ...

    def render(self, data: RenderInput) -> Content:
        """Subject, HTML and text for one recipient."""
        ...


# (template html, subject, preheader) -> renderer
RendererFactory = Callable[[str, str, str | None], CopyRenderer]


class Book(Protocol):
    def for_contact(self, contact_id: int | None) -> Recommend: ...


class Recommender(Protocol):
    """Prefetches the recommendations of a batch of contacts in a few queries."""

    async def prefetch(
        self,
        contact_ids: Sequence[int],
        calls: frozenset[tuple[str, int]],
        *,
        conn: AsyncConnection | None = None,
    ) -> Book: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderSettings:
    """The configuration the sender reads (campaigns.*, tracking.*, shop.*)."""

    concurrency: int = 64
    batch: int = 500
    open_pixel: bool = True
    feedback_sender: str = "localhost"  # campaigns.feedback_id or server.hostname
    shop_name: str = ""
    shop_address: str = ""
    poll_seconds: float = 1.0


def no_recommendations(_kind: str, _n: int) -> Sequence[Any]:
    """The recommendations of a copy rendered without a recommender: none."""
    return ()


# -- one copy: shared by the sender and the view-in-browser page (view.py) ---------------

_CONTACT_FIELDS = ("first_name", "last_name", "country", "region", "city")
# The recipient's row joined to its contact: what rendering a copy reads.
RECIPIENT_COLUMNS = (
    *(campaign_recipients.c[name] for name in ("id", "email", "variant_id")),
    contacts.c.id.label("contact_id"),
    *(contacts.c[name] for name in (*_CONTACT_FIELDS, "attributes")),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyJob:
    """One recipient's copy of one variant."""

    campaign: Campaign
    variant: Variant
    ref: Ref  # Ref("c", campaign_recipients.id)
    row: Any  # a row of RECIPIENT_COLUMNS
    recommend: Recommend


async def template_source(conn: AsyncConnection, variant: Variant) -> str:
    """The compiled HTML of ``variant``'s template ("" when the template is gone)."""
    source = await conn.scalar(
        select(templates.c.html).where(templates.c.id == variant.template_id)
    )
    return source or ""


async def load_renderer(
    conn: AsyncConnection, factory: RendererFactory, campaign: Campaign, variant: Variant
) -> CopyRenderer:
    """The renderer of ``variant``'s template (compiled HTML, subject, preheader)."""
    return factory(await template_source(conn, variant), variant.subject, campaign.preheader)


def recipient_contact(row: Any) -> dict[str, Any]:
    """What the template sees as ``contact``, from a row of :data:`RECIPIENT_COLUMNS`."""
    names = {name: getattr(row, name) for name in _CONTACT_FIELDS}
    return {
        "id": row.contact_id,
        "email": row.email,
        **names,
        "attributes": dict(row.attributes or {}),
    }


def render_copy(
    job: CopyJob,
    renderer: CopyRenderer,
    *,
    links: Links,
    verp_key: bytes,
    settings: SenderSettings,
    now: datetime,
) -> Copy:
    """Render and build one copy (tracked links, footer, list headers); the open pixel
    only when ``settings.open_pixel`` is on and ``attributes.tracking_consent`` is not false."""
    urls = copy_urls(links, job.ref)
    contact = recipient_contact(job.row)
    content = renderer.render(
        RenderInput(contact=contact, urls=urls, recommendations=job.recommend)
    )
    consent = contact["attributes"].get("tracking_consent") is not False
    campaign = job.campaign
    return build_copy(
        ref=job.ref,
        recipient=job.row.email,
        author=Author(
            address=campaign.from_address, name=campaign.from_name, reply_to=campaign.reply_to
        ),
        content=content,
        urls=urls,
        footer=Footer(shop_name=settings.shop_name, shop_address=settings.shop_address),
        links=links,
        verp_key=verp_key,
        feedback=feedback_id(campaign.id, job.variant.label, settings.feedback_sender),
        open_pixel=settings.open_pixel and consent,
        now=now,
    )
