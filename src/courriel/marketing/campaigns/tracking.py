"""What a tracked open, click or unsubscribe of campaign (and transactional) mail records.

Owns the recording side of the public links of :mod:`courriel.marketing.campaigns.tokens`
(``/o/``, ``/c/``, ``/u/``): the report counters (through
:mod:`courriel.marketing.campaigns.stats`, never ``campaign_stats`` directly), the per-link
counts in ``campaign_links``, the contact's consent and the Klaviyo-named events
("Opened Email", "Clicked Email", "Unsubscribed") written with source ``"campaign"``.

Rules (documented for operators in docs/tracking.md, "Campaign tracking"):
- **Prefetches.** Apple Mail Privacy Protection fetches every image of every message
  through Apple's proxies, whether the person reads it or not. A fetch from Apple's
  network (17.0.0.0/8) with the bare user agent ``Mozilla/5.0`` is a *prefetch*: it bumps
  ``prefetches`` and writes "Opened Email" with ``"prefetch": true`` (as Klaviyo flags
  "Apple Privacy Open"), never ``opens`` nor ``unique_opens``. Gmail's image proxy
  (``GoogleImageProxy``) fetches only when the message is displayed, so it is a real open
  by convention.
- **A click implies an open.** A click from a recipient who never opened (images blocked,
  no pixel) also counts as their first open (``opens`` and ``unique_opens`` +1 once, an
  "Opened Email" event with ``"implied": true``).
- **Per-link counts** are unique per recipient and URL: ``campaign_links.clicks`` counts
  every click on the URL, ``unique_clicks`` the recipients who clicked it at least once.
  The "first click on this URL" test is the ``(source, unique_key)`` constraint of the
  events table (key ``click:<ref>:<sha256(url)>``), so it holds under races on both engines.
- **Unsubscribe** is idempotent: the email consent becomes "unsubscribed" with the method
  as proof (``unsubscribe_link``, ``one_click``, ``mailto``, ``complaint``,
  ``preference_centre``); ``unsubscribes`` moves once per recipient; the event is written once.
- A valid reference whose row is gone (campaign deleted, contact forgotten under GDPR)
  records nothing and raises nothing: the person still gets their page or redirect.

Every function runs in one write transaction: the counters, the marks, the consent and the
events commit together or not at all. Functions ending in ``_in`` take the caller's
``AsyncConnection`` (so another service, such as the feedback processor, can unsubscribe
inside its own transaction); the others open one on the :class:`Database`.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import NotFound
from courriel.marketing import dailystats
from courriel.marketing.campaigns import stats
from courriel.marketing.campaigns.tokens import Ref
from courriel.marketing.commerce import EventData, append_event, upsert_statement
from courriel.marketing.consent import set_consent
from courriel.marketing.types import ConsentChange
from courriel.storage.db import Database
from courriel.storage.models.campaigns import (
    campaign_links,
    campaign_variants,
    transactional_messages,
)
from courriel.storage.models.marketing import contacts

__all__ = [
    "EVENT_SOURCE",
    "UNSUBSCRIBE_METHODS",
    "is_prefetch",
    "message_properties",
    "record_click",
    "record_open",
    "unsubscribe",
    "unsubscribe_in",
]

EVENT_SOURCE = "campaign"
UNSUBSCRIBE_METHODS = frozenset(
    {"unsubscribe_link", "one_click", "mailto", "complaint", "preference_centre"}
)
# Apple's own network: Mail Privacy Protection's image proxies egress from it.
_APPLE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)
_GENERIC_UA = "Mozilla/5.0"


def is_prefetch(user_agent: str | None, ip: str | None) -> bool:
    """True for a proxy fetch made whether or not the person read the mail (Apple MPP)."""
    if (user_agent or "").strip() != _GENERIC_UA or not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in _APPLE_NETWORKS)


async def _recipient(conn: AsyncConnection, ref: Ref) -> stats.Recipient | None:
    try:
        return await conn.run_sync(lambda c: stats.recipient(c, ref))
    except NotFound:
        return None


async def message_properties(conn: AsyncConnection, who: stats.Recipient) -> dict[str, Any]:
    """The event properties naming the message: campaign, variant and subject."""
    if who.campaign_id is None:
        subject = (
            await conn.execute(
                select(transactional_messages.c.subject).where(
                    transactional_messages.c.id == who.ref.id
                )
            )
        ).scalar_one_or_none()
        return {"transactional_id": who.ref.id, "subject": subject}
    subject = None
    if who.variant_id is not None:
        subject = (
            await conn.execute(
                select(campaign_variants.c.subject).where(campaign_variants.c.id == who.variant_id)
            )
        ).scalar_one_or_none()
    return {"campaign_id": who.campaign_id, "variant_id": who.variant_id, "subject": subject}


async def _event(
    conn: AsyncConnection,
    who: stats.Recipient,
    name: str,
    properties: dict[str, Any],
    *,
    now: datetime,
    key: str | None = None,
) -> bool:
    """Append one event on the recipient's contact; False when ``key`` was taken already."""
    new_id = await append_event(
        conn,
        EventData(
            name=name,
            properties=properties,
            occurred_at=now,
            source=EVENT_SOURCE,
            unique_key=key,
            contact_id=who.contact_id,
        ),
    )
    return new_id is not None


async def _bump(conn: AsyncConnection, who: stats.Recipient, **deltas: int) -> None:
    campaign_id, variant_id = who.campaign_id, who.variant_id
    if campaign_id is None or variant_id is None:
        return  # transactional mail (or a copy not yet assigned a variant) has no report row
    await conn.run_sync(lambda c: stats.bump(c, campaign_id, variant_id, **deltas))


async def _mark_first(
    conn: AsyncConnection, ref: Ref, column: stats.FirstMark, now: datetime
) -> bool:
    return await conn.run_sync(lambda c: stats.mark_first(c, ref, column, now))


# -- opens ------------------------------------------------------------------------------


async def _open_in(
    conn: AsyncConnection, who: stats.Recipient, props: dict[str, Any], *, now: datetime
) -> None:
    first = await _mark_first(conn, who.ref, "opened_at", now)
    await _bump(conn, who, opens=1, unique_opens=1 if first else 0)
    await dailystats.bump_in(conn, "opened", now, 1 if first else 0)
    await _event(conn, who, "Opened Email", props, now=now)


async def record_open(
    db: Database, ref: Ref, *, user_agent: str | None, ip: str | None, now: datetime
) -> None:
    """Record a fetch of the open pixel of ``ref``'s message (see the module's rules)."""
    async with db.write() as conn:
        who = await _recipient(conn, ref)
        if who is None:
            return
        props = await message_properties(conn, who)
        if is_prefetch(user_agent, ip):
            await _bump(conn, who, prefetches=1)
            await _event(conn, who, "Opened Email", {**props, "prefetch": True}, now=now)
            return
        await _open_in(conn, who, props, now=now)


# -- clicks -----------------------------------------------------------------------------


async def _count_link(
    conn: AsyncConnection, campaign_id: int, url: str, url_hash: str, *, first: bool
) -> None:
    """Insert-or-increment the campaign's row for ``url``."""
    unique = 1 if first else 0
    stmt = upsert_statement(conn, campaign_links).values(
        campaign_id=campaign_id, url=url, url_hash=url_hash, clicks=1, unique_clicks=unique
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["campaign_id", "url_hash"],
        set_={
            "clicks": campaign_links.c.clicks + 1,
            "unique_clicks": campaign_links.c.unique_clicks + unique,
        },
    )
    await conn.execute(stmt)


async def record_click(
    db: Database,
    ref: Ref,
    url: str,
    *,
    user_agent: str | None,
    ip: str | None,
    now: datetime,
) -> None:
    """Record a click on ``url`` in ``ref``'s message (the redirect happens regardless).

    Args:
        db: the database.
        ref: the message.
        url: the target, as signed in the link.
        user_agent: the client's User-Agent header (kept out of the event).
        ip: the client's address (kept out of the event).
        now: the time of the click.
    """
    del user_agent, ip  # not stored: a click is a click whoever's proxy made it
    url_hash = hashlib.sha256(url.encode("utf-8")).hexdigest()
    async with db.write() as conn:
        who = await _recipient(conn, ref)
        if who is None:
            return
        props = await message_properties(conn, who)
        if await _mark_first(conn, ref, "opened_at", now):
            # Images blocked: the click proves the mail was opened.
            await _bump(conn, who, opens=1, unique_opens=1)
            await dailystats.bump_in(conn, "opened", now)
            await _event(conn, who, "Opened Email", {**props, "implied": True}, now=now)
        first = await _mark_first(conn, ref, "clicked_at", now)
        await _bump(conn, who, clicks=1, unique_clicks=1 if first else 0)
        await dailystats.bump_in(conn, "clicked", now, 1 if first else 0)
        click_props = {**props, "url": url}
        key = f"click:{ref}:{url_hash}"
        first_on_url = await _event(conn, who, "Clicked Email", click_props, now=now, key=key)
        if not first_on_url:
            await _event(conn, who, "Clicked Email", click_props, now=now)
        if who.campaign_id is not None:
            await _count_link(conn, who.campaign_id, url, url_hash, first=first_on_url)


# -- unsubscribe ------------------------------------------------------------------------


async def unsubscribe_in(
    conn: AsyncConnection, ref: Ref, *, method: str, ip: str | None, now: datetime
) -> stats.Recipient | None:
    """Unsubscribe the recipient of ``ref`` from email, inside the caller's transaction.

    Sets the contact's email consent to "unsubscribed" (proof: ``method``, ``ip``, the
    reference as detail), marks the copy's ``unsubscribed_at``, bumps ``unsubscribes`` and
    writes "Unsubscribed" — each once, however often it is called.

    Args:
        conn: a connection inside a write transaction.
        ref: the message the person unsubscribes from.
        method: one of :data:`UNSUBSCRIBE_METHODS`.
        ip: the person's address (None for mailto and complaints).
        now: the time of the request.

    Returns:
        Whom the reference names, or None when its row is gone (nothing is recorded).

    Raises:
        ValueError: an unknown method (a programming error).
        InvalidInput: a malformed IP address.
    """
    if method not in UNSUBSCRIBE_METHODS:
        raise ValueError(f"unknown unsubscribe method {method!r}")
    who = await _recipient(conn, ref)
    if who is None:
        return None
    if who.contact_id is not None and await _contact_exists(conn, who.contact_id):
        change = ConsentChange(
            channel="email", status="unsubscribed", method=method, ip=ip, detail=f"ref:{ref}"
        )
        await set_consent(conn, who.contact_id, change, now=now)
    if await _mark_first(conn, ref, "unsubscribed_at", now):
        await _bump(conn, who, unsubscribes=1)
        await dailystats.bump_in(conn, "unsubscribed", now)
    props = {**await message_properties(conn, who), "method": method}
    await _event(conn, who, "Unsubscribed", props, now=now, key=f"unsubscribe:{ref}")
    return who


async def _contact_exists(conn: AsyncConnection, contact_id: int) -> bool:
    found = await conn.execute(select(contacts.c.id).where(contacts.c.id == contact_id))
    return found.first() is not None


async def unsubscribe(
    db: Database, ref: Ref, *, method: str, ip: str | None, now: datetime
) -> stats.Recipient | None:
    """:func:`unsubscribe_in` in a transaction of its own."""
    async with db.write() as conn:
        return await unsubscribe_in(conn, ref, method=method, ip=ip, now=now)
