"""View in browser (``/v/<token>``): one recipient's campaign copy rendered again as HTML.

Owns :func:`render_copy_html`. It renders through the sender's own code path
(:func:`courriel.marketing.campaigns.sender.render_copy`: the same renderer factory, the
contact's recommendations, tracked links, footer) and answers the HTML part of the message
that path builds, so the page and the mail can never drift apart.

Invariants:
- **A view is not an open.** The copy is built with the open pixel switched off, so a
  browser view never fetches ``/o/`` and never counts as an open (links stay tracked: a
  click on the page is a click on the campaign).
- **Nothing is written**: rendering reads the recipient, its contact, the campaign and the
  template in one read transaction.
- **What is rendered now, not what was sent.** Copies are not kept (a campaign's bodies
  would cost more than its audience); the page is rendered from the current contact and
  template, so a name changed since, or recommendations that moved, show their new value.
- **Transactional messages cannot be viewed**: ``transactional_messages`` keeps no
  template data (it may hold order details and reset links that must not outlive the
  mail), so a ``t`` reference answers None (the route's 404 page says why).
- None, never an exception, when the rows are gone: the recipient (campaign or contact
  deleted), or a copy that was never rendered (no variant chosen yet).
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import NotFound
from courriel.marketing.campaigns.copies import (
    RECIPIENT_COLUMNS,
    CopyJob,
    CopyRenderer,
    Recommend,
    Recommender,
    RendererFactory,
    SenderSettings,
    load_renderer,
    no_recommendations,
    render_copy,
)
from courriel.marketing.campaigns.service import get_campaign
from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients
from courriel.storage.models.marketing import contacts

__all__ = ["render_copy_html"]

# The envelope sender (VERP) of a rebuilt copy is thrown away with its headers: no key needed.
_NO_VERP_KEY = b""


async def render_copy_html(
    db: Database,
    ref: Ref,
    *,
    links: Links,
    renderer_factory: RendererFactory,
    recommender: Recommender | None,
    settings: SenderSettings,
    now: datetime,
) -> str | None:
    """The HTML of ``ref``'s copy as its recipient got it, without the open pixel.

    Args:
        db: the database.
        ref: the copy (from a verified ``/v/`` token).
        links: builds the copy's tracked links (the sender's).
        renderer_factory: the sender's template renderers.
        recommender: the contact's recommendations (None: templates get none).
        settings: shop name and address for the footer (the sender's settings).
        now: the time the copy is built at.

    Returns:
        The HTML document, or None when the copy cannot be shown (a transactional
        message, or rows that are gone).
    """
    if ref.kind != "c":
        return None
    async with db.read() as conn:
        loaded = await _load(conn, ref, renderer_factory, recommender)
    if loaded is None:
        return None
    job, renderer = loaded
    copy = render_copy(
        job,
        renderer,
        links=links,
        verp_key=_NO_VERP_KEY,
        settings=replace(settings, open_pixel=False),
        now=now,
    )
    return _html_part(copy.message)


async def _load(
    conn: AsyncConnection,
    ref: Ref,
    factory: RendererFactory,
    recommender: Recommender | None,
) -> tuple[CopyJob, CopyRenderer] | None:
    row = (
        await conn.execute(
            select(*RECIPIENT_COLUMNS, campaign_recipients.c.campaign_id)
            .join(contacts, contacts.c.id == campaign_recipients.c.contact_id)
            .where(campaign_recipients.c.id == ref.id)
        )
    ).first()
    if row is None or row.variant_id is None:
        return None
    try:
        campaign = await get_campaign(conn, int(row.campaign_id))
    except NotFound:
        return None
    variant = next((v for v in campaign.variants if v.id == row.variant_id), None)
    if variant is None:
        return None
    renderer = await load_renderer(conn, factory, campaign, variant)
    recommend: Recommend = no_recommendations
    calls = renderer.recommendation_calls
    if recommender is not None and calls:
        # The same prefetch the sender makes for a page of recipients, for one contact.
        book = await recommender.prefetch([int(row.contact_id)], calls, conn=conn)
        recommend = book.for_contact(int(row.contact_id))
    job = CopyJob(campaign=campaign, variant=variant, ref=ref, row=row, recommend=recommend)
    return job, renderer


def _html_part(message: bytes) -> str:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("html",))
    assert body is not None  # build_copy always writes a text/html part
    content = body.get_content()
    assert isinstance(content, str)
    return content
