"""The preference centre behind ``/p/<token>``: a contact's lists and channels.

Owns what the page shows and what its form may change. Everything else (memberships,
consent proof) goes through :mod:`courriel.marketing.lists` and
:mod:`courriel.marketing.consent`, with the method ``"preference_centre"``.

Rules (documented in docs/tracking.md, "Preference centre"):
- **Lists shown** are the lists the contact is a member of, in any status (subscribed,
  pending or unsubscribed): the schema has no "public list" flag, and listing every list
  of the shop would reveal its internal lists (VIP, churn risk …) to any recipient.
- **Email** can be switched off and back on: the signed link came in the person's own mail,
  which proves they hold the address. Turning it off is an unsubscribe of the message the
  link came in (:func:`courriel.marketing.campaigns.tracking.unsubscribe_in`), so the
  campaign's report counts it.
- **SMS** is shown when the contact has a phone number, and can only be switched *off*
  here: an SMS opt-in needs express consent given for that number (TCPA, PECR), which a
  checkbox reached from an email does not prove.
- Re-ticking a list subscribes again through :func:`courriel.marketing.lists.subscribe`:
  a double opt-in list sends its confirmation mail (``outbox``) and stays pending.
- One call is one transaction: a bad list id changes nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.campaigns import stats
from courriel.marketing.campaigns.tokens import Ref
from courriel.marketing.campaigns.tracking import unsubscribe_in
from courriel.marketing.consent import set_consent
from courriel.marketing.lists import OptIn, subscribe
from courriel.marketing.lists import unsubscribe as leave_list
from courriel.marketing.types import ConsentChange, OutgoingMail
from courriel.storage.models.marketing import contacts, list_members, lists

__all__ = [
    "METHOD",
    "ListChoice",
    "PreferenceChange",
    "Preferences",
    "apply_preferences",
    "load_preferences",
]

METHOD = "preference_centre"
_ON = ("subscribed", "pending")


@dataclass(frozen=True, slots=True, kw_only=True)
class ListChoice:
    """One list on the page."""

    list_id: int
    name: str
    status: str  # subscribed | pending | unsubscribed


@dataclass(frozen=True, slots=True, kw_only=True)
class Preferences:
    """What the preference centre shows."""

    contact_id: int
    email: str
    email_status: str  # subscribed | unsubscribed | pending | never
    sms_status: str | None  # None: no phone number known, no SMS row on the page
    lists: tuple[ListChoice, ...]

    @property
    def email_on(self) -> bool:
        """Whether the email box is ticked."""
        return self.email_status in _ON


@dataclass(frozen=True, slots=True, kw_only=True)
class PreferenceChange:
    """The submitted form: the boxes ticked."""

    email: bool
    sms: bool
    lists: frozenset[int]  # the ids of the lists ticked


async def _contact_id(conn: AsyncConnection, ref: Ref) -> int | None:
    try:
        who = await conn.run_sync(lambda c: stats.recipient(c, ref))
    except NotFound:
        return None
    return who.contact_id


async def load_preferences(conn: AsyncConnection, ref: Ref) -> Preferences | None:
    """The preferences of the contact ``ref``'s message went to; None when it is gone."""
    contact_id = await _contact_id(conn, ref)
    if contact_id is None:
        return None
    row = (
        await conn.execute(
            select(
                contacts.c.email, contacts.c.email_status, contacts.c.sms_status, contacts.c.phone
            ).where(contacts.c.id == contact_id)
        )
    ).first()
    if row is None:
        return None
    memberships = await conn.execute(
        select(lists.c.id, lists.c.name, list_members.c.status)
        .join(list_members, list_members.c.list_id == lists.c.id)
        .where(list_members.c.contact_id == contact_id)
        .order_by(lists.c.name, lists.c.id)
    )
    return Preferences(
        contact_id=contact_id,
        email=row.email,
        email_status=row.email_status,
        sms_status=row.sms_status if row.phone else None,
        lists=tuple(
            ListChoice(list_id=int(m.id), name=m.name, status=m.status) for m in memberships
        ),
    )


async def apply_preferences(
    conn: AsyncConnection,
    ref: Ref,
    change: PreferenceChange,
    *,
    ip: str | None,
    now: datetime,
    optin: OptIn | None,
    outbox: list[OutgoingMail],
) -> Preferences | None:
    """Apply the submitted form; returns the preferences as they now are.

    Args:
        conn: a connection inside a write transaction.
        ref: the message the link came in.
        change: the ticked boxes.
        ip: the person's address, for the consent proof.
        now: the time of the request.
        optin: what a double opt-in confirmation needs (None: such lists are left as they are).
        outbox: confirmation mails to send after commit
            (:func:`~courriel.marketing.lists.send_outbox`).

    Returns:
        None when the message's contact is gone (nothing changes).

    Raises:
        InvalidInput: a ticked list the contact is not a member of (field "lists").
    """
    before = await load_preferences(conn, ref)
    if before is None:
        return None
    known = {choice.list_id: choice for choice in before.lists}
    if not change.lists <= known.keys():
        raise InvalidInput("not one of your lists", field="lists")
    await _apply_email(conn, ref, before, change.email, ip=ip, now=now)
    if before.sms_status in _ON and not change.sms:
        sms_off = ConsentChange(channel="sms", status="unsubscribed", method=METHOD, ip=ip)
        await set_consent(conn, before.contact_id, sms_off, now=now)
    for list_id, choice in known.items():
        wanted, current = list_id in change.lists, choice.status in _ON
        if current and not wanted:
            await leave_list(conn, list_id, before.contact_id, now=now)
        elif wanted and not current:
            await _rejoin(
                conn, list_id, before.contact_id, ip=ip, now=now, optin=optin, outbox=outbox
            )
    return await load_preferences(conn, ref)


async def _apply_email(
    conn: AsyncConnection,
    ref: Ref,
    before: Preferences,
    wanted: bool,
    *,
    ip: str | None,
    now: datetime,
) -> None:
    if before.email_on and not wanted:
        await unsubscribe_in(conn, ref, method=METHOD, ip=ip, now=now)
    elif wanted and not before.email_on:
        on = ConsentChange(channel="email", status="subscribed", method=METHOD, ip=ip)
        await set_consent(conn, before.contact_id, on, now=now)


async def _rejoin(
    conn: AsyncConnection,
    list_id: int,
    contact_id: int,
    *,
    ip: str | None,
    now: datetime,
    optin: OptIn | None,
    outbox: list[OutgoingMail],
) -> None:
    try:
        await subscribe(
            conn, list_id, contact_id, method=METHOD, ip=ip, now=now, optin=optin, outbox=outbox
        )
    except ValueError:
        # A double opt-in list and no way to send its confirmation: left as it is.
        return
