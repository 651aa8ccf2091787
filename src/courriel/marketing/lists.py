"""Lists and their members, with double opt-in.

Owns the ``lists`` and ``list_members`` rows, the confirmation mail of double opt-in lists
and the confirmation of its link. Functions take an open ``AsyncConnection`` and run inside
the caller's write transaction, except :func:`confirm_subscription` and
:func:`send_outbox`, which the web and app layers call with the database and the mailer.

Sending after commit: :func:`subscribe` never sends. It appends the confirmation mail to
the caller's ``outbox`` list; the caller commits, then hands the outbox to
:func:`send_outbox`. A rolled-back subscription therefore sends nothing, and a mail that
cannot be queued leaves a pending member whose subscribe can simply be retried.

Invariants:
- Member status is "subscribed", "pending" (waiting for the confirmation link) or
  "unsubscribed". Subscribing to any list is email consent: a plain list records
  "subscribed" with the caller's method; a double opt-in list records "pending" (unless
  the contact's email consent is "subscribed" already) and "subscribed" with method
  "double_opt_in" once the link is followed (the M3AAWG confirmed opt-in practice).
- A confirmation link confirms only a pending member: a member who unsubscribed since is
  not re-subscribed by an old link. Links expire after :data:`CONFIRM_MAX_AGE`.
- No confirmation mail goes to a suppressed address (bounced, complained, forgotten):
  the member stays pending, and the caller learns nothing it could leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing.consent import set_consent
from courriel.marketing.links import LinkSigner
from courriel.marketing.normalise import normalise_text
from courriel.marketing.ports import Mailer
from courriel.marketing.suppression import is_suppressed
from courriel.marketing.types import ConsentChange, MailingList, OutgoingMail
from courriel.storage.db import Database
from courriel.storage.models.marketing import contacts, list_members, lists

__all__ = [
    "CONFIRM_MAX_AGE",
    "CONFIRM_PURPOSE",
    "ListMember",
    "ListName",
    "OptIn",
    "build_confirmation",
    "confirm",
    "confirm_subscription",
    "create_list",
    "delete_list",
    "ensure_list",
    "find_list",
    "get_list",
    "list_lists",
    "list_names",
    "list_to_dict",
    "members",
    "send_outbox",
    "subscribe",
    "unsubscribe",
]

CONFIRM_PURPOSE = "list-confirm"
CONFIRM_MAX_AGE = timedelta(days=7)
MEMBER_STATUSES = ("subscribed", "pending", "unsubscribed")


@dataclass(frozen=True, slots=True, kw_only=True)
class OptIn:
    """What a double opt-in confirmation mail needs; built by the app from its config."""

    links: LinkSigner
    public_url: str  # http.public_url, the base of the confirmation link
    sender: str  # From and envelope sender of the confirmation mail


@dataclass(frozen=True, slots=True, kw_only=True)
class ListMember:
    """One contact's membership of a list."""

    contact_id: int
    email: str
    status: str
    added_at: datetime
    confirmed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListName:
    """A list's id and name, for pickers and labels (no member counts)."""

    id: int
    name: str


def _check_name(name: str) -> str:
    text = normalise_text(name, field="name", max_length=128)
    if text is None:
        raise InvalidInput("a list needs a name", field="name")
    return text


async def create_list(
    conn: AsyncConnection, *, name: str, double_opt_in: bool = False, now: datetime
) -> MailingList:
    """Create a list.

    Raises:
        InvalidInput: empty name or longer than 128 characters.
        AlreadyExists: a list has this name.
    """
    clean = _check_name(name)
    if await find_list(conn, clean) is not None:
        raise AlreadyExists(f"list {clean!r} exists already")
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                insert(lists)
                .values(name=clean, double_opt_in=double_opt_in, created_at=now)
                .returning(lists.c.id)
            )
    except IntegrityError as exc:
        raise AlreadyExists(f"list {clean!r} exists already") from exc
    return MailingList(
        id=int(result.scalar_one()), name=clean, double_opt_in=double_opt_in, created_at=now
    )


async def ensure_list(conn: AsyncConnection, name: str, *, now: datetime) -> MailingList:
    """The list called ``name``, created (without double opt-in) when missing."""
    found = await find_list(conn, name)
    if found is not None:
        return found
    return await create_list(conn, name=name, now=now)


def _to_list(row: Any, counts: dict[str, int] | None = None) -> MailingList:
    counts = counts or {}
    return MailingList(
        id=int(row.id),
        name=row.name,
        double_opt_in=bool(row.double_opt_in),
        created_at=row.created_at,
        subscribed=counts.get("subscribed", 0),
        pending=counts.get("pending", 0),
    )


async def _counts(conn: AsyncConnection, list_ids: list[int]) -> dict[int, dict[str, int]]:
    result = await conn.execute(
        select(list_members.c.list_id, list_members.c.status, func.count())
        .where(list_members.c.list_id.in_(list_ids))
        .group_by(list_members.c.list_id, list_members.c.status)
    )
    counts: dict[int, dict[str, int]] = {}
    for list_id, status, count in result:
        counts.setdefault(int(list_id), {})[status] = int(count)
    return counts


async def find_list(conn: AsyncConnection, name: str) -> MailingList | None:
    """The list with this name (stripped), or None."""
    row = (await conn.execute(select(lists).where(lists.c.name == name.strip()))).first()
    return None if row is None else _to_list(row)


async def get_list(conn: AsyncConnection, list_id: int, *, counts: bool = True) -> MailingList:
    """The list with its member counts.

    Args:
        conn: an open connection.
        list_id: the list.
        counts: False reads the ``lists`` row only and leaves ``subscribed`` and
            ``pending`` at 0: counting reads every membership of the list (about 0.3 s
            on PostgreSQL and 0.7 s on SQLite for 1M members), which a page load or a
            subscription must not pay (design.md: nothing is counted on page load).

    Raises:
        NotFound: no such list.
    """
    row = (await conn.execute(select(lists).where(lists.c.id == list_id))).first()
    if row is None:
        raise NotFound(f"no list {list_id}")
    if not counts:
        return _to_list(row)
    return _to_list(row, (await _counts(conn, [list_id])).get(list_id))


async def list_lists(conn: AsyncConnection, *, counts: bool = True) -> list[MailingList]:
    """Every list, by name, with member counts (``counts=False``: 0, see :func:`get_list`)."""
    rows = (await conn.execute(select(lists).order_by(lists.c.name))).all()
    if not counts:
        return [_to_list(row) for row in rows]
    found = await _counts(conn, [int(row.id) for row in rows])
    return [_to_list(row, found.get(int(row.id))) for row in rows]


async def list_names(conn: AsyncConnection) -> list[ListName]:
    """Every list's id and name, by name: one read of ``lists``, never of its members.

    For pages that only name lists (filters, pickers, labels): :func:`list_lists` counts
    every list's members, which grows with ``list_members`` (design.md: nothing is counted
    on page load).
    """
    rows = await conn.execute(select(lists.c.id, lists.c.name).order_by(lists.c.name))
    return [ListName(id=int(row.id), name=row.name) for row in rows]


async def delete_list(conn: AsyncConnection, list_id: int) -> None:
    """Delete a list and its memberships (the contacts and their consent stay).

    Raises:
        NotFound: no such list.
    """
    await conn.execute(delete(list_members).where(list_members.c.list_id == list_id))
    result = await conn.execute(delete(lists).where(lists.c.id == list_id))
    if result.rowcount == 0:
        raise NotFound(f"no list {list_id}")


def list_to_dict(item: MailingList) -> dict[str, Any]:
    """The list as a JSON-able dict."""
    return {
        "id": item.id,
        "name": item.name,
        "double_opt_in": item.double_opt_in,
        "created_at": item.created_at.isoformat(),
        "subscribed": item.subscribed,
        "pending": item.pending,
    }


async def members(
    conn: AsyncConnection,
    list_id: int,
    *,
    status: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[ListMember]:
    """Members of a list by contact id after the cursor ``after_id``.

    Raises:
        InvalidInput: unknown status or ``limit`` outside 1–1000.
    """
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be 1 to 1000", field="limit")
    statement = (
        select(list_members, contacts.c.email)
        .join(contacts, contacts.c.id == list_members.c.contact_id)
        .where(list_members.c.list_id == list_id, list_members.c.contact_id > after_id)
    )
    if status is not None:
        if status not in MEMBER_STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(MEMBER_STATUSES)}", field="status"
            )
        statement = statement.where(list_members.c.status == status)
    rows = await conn.execute(statement.order_by(list_members.c.contact_id).limit(limit))
    return [
        ListMember(
            contact_id=int(row.contact_id),
            email=row.email,
            status=row.status,
            added_at=row.added_at,
            confirmed_at=row.confirmed_at,
        )
        for row in rows
    ]


async def _contact(conn: AsyncConnection, contact_id: int) -> tuple[str, str]:
    row = (
        await conn.execute(
            select(contacts.c.email, contacts.c.email_status).where(contacts.c.id == contact_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no contact {contact_id}")
    return row.email, row.email_status


async def _member_status(conn: AsyncConnection, list_id: int, contact_id: int) -> str | None:
    found = await conn.execute(
        select(list_members.c.status).where(
            list_members.c.list_id == list_id, list_members.c.contact_id == contact_id
        )
    )
    return found.scalar_one_or_none()


async def _set_member(
    conn: AsyncConnection, list_id: int, contact_id: int, *, status: str, now: datetime
) -> None:
    confirmed = now if status == "subscribed" else None
    if await _member_status(conn, list_id, contact_id) is None:
        await conn.execute(
            insert(list_members).values(
                list_id=list_id,
                contact_id=contact_id,
                status=status,
                added_at=now,
                confirmed_at=confirmed,
            )
        )
        return
    await conn.execute(
        update(list_members)
        .where(list_members.c.list_id == list_id, list_members.c.contact_id == contact_id)
        .values(status=status, confirmed_at=confirmed)
    )


async def subscribe(
    conn: AsyncConnection,
    list_id: int,
    contact_id: int,
    *,
    method: str,
    ip: str | None = None,
    now: datetime,
    optin: OptIn | None = None,
    outbox: list[OutgoingMail] | None = None,
) -> str:
    """Subscribe a contact to a list; returns the member's status.

    On a plain list the member is "subscribed" at once. On a double opt-in list the member
    is "pending" and a confirmation mail is appended to ``outbox`` (send it after commit
    with :func:`send_outbox`); a member subscribed already stays so, and gets no mail.

    Args:
        conn: a connection inside the caller's write transaction.
        list_id: the list.
        contact_id: the contact.
        method: how the person asked (the consent proof's method: form, api, import…).
        ip: the person's IP address, for the proof.
        now: the time of the request.
        optin: link signer, public URL and sender; required for double opt-in lists.
        outbox: where the confirmation mail goes; required for double opt-in lists.

    Raises:
        NotFound: no such list or contact.
        InvalidInput: a malformed method or IP address.
        ValueError: a double opt-in list without ``optin`` and ``outbox`` (a programming error).
    """
    # Only the name and the double opt-in flag are needed: no member counts.
    mailing_list = await get_list(conn, list_id, counts=False)
    email, email_status = await _contact(conn, contact_id)
    detail = f"list:{mailing_list.name}"
    if not mailing_list.double_opt_in:
        await _set_member(conn, list_id, contact_id, status="subscribed", now=now)
        change = ConsentChange(
            channel="email", status="subscribed", method=method, ip=ip, detail=detail
        )
        await set_consent(conn, contact_id, change, now=now)
        return "subscribed"
    if optin is None or outbox is None:
        raise ValueError("a double opt-in list needs optin and outbox")
    if await _member_status(conn, list_id, contact_id) == "subscribed":
        return "subscribed"
    await _set_member(conn, list_id, contact_id, status="pending", now=now)
    if email_status != "subscribed":
        change = ConsentChange(
            channel="email", status="pending", method=method, ip=ip, detail=detail
        )
        await set_consent(conn, contact_id, change, now=now)
    if not await is_suppressed(conn, email):
        token = optin.links.sign(CONFIRM_PURPOSE, {"l": list_id, "c": contact_id})
        link = f"{optin.public_url.rstrip('/')}/u/confirm/{token}"
        message = build_confirmation(
            sender=optin.sender, recipient=email, list_name=mailing_list.name, link=link, now=now
        )
        outbox.append(OutgoingMail(sender=optin.sender, recipient=email, message=message))
    return "pending"


async def unsubscribe(
    conn: AsyncConnection, list_id: int, contact_id: int, *, now: datetime
) -> bool:
    """Mark the member unsubscribed from this list (email consent is unchanged).

    Returns:
        True when the member was subscribed or pending; False otherwise.
    """
    del now  # memberships keep no unsubscribe time; the argument keeps call sites uniform
    result = await conn.execute(
        update(list_members)
        .where(
            list_members.c.list_id == list_id,
            list_members.c.contact_id == contact_id,
            list_members.c.status != "unsubscribed",
        )
        .values(status="unsubscribed")
    )
    return bool(result.rowcount)


async def confirm(
    conn: AsyncConnection, token: str, *, links: LinkSigner, ip: str | None, now: datetime
) -> MailingList:
    """Follow a confirmation link: the member and the email consent become subscribed.

    Following a link twice is harmless (the second time changes nothing).

    Returns:
        The list confirmed.

    Raises:
        InvalidInput: (field "token") a bad or expired link, or a member who unsubscribed
            since the link was sent.
        NotFound: the list or the contact was deleted.
    """
    payload = links.verify(CONFIRM_PURPOSE, token, max_age=CONFIRM_MAX_AGE)
    list_id, contact_id = payload.get("l"), payload.get("c")
    if not isinstance(list_id, int) or not isinstance(contact_id, int):
        raise InvalidInput("the link is not valid", field="token")
    mailing_list = await get_list(conn, list_id, counts=False)
    status = await _member_status(conn, list_id, contact_id)
    if status is None:
        raise NotFound("this subscription no longer exists")
    if status == "unsubscribed":
        raise InvalidInput("this subscription was cancelled", field="token")
    if status == "pending":
        await _set_member(conn, list_id, contact_id, status="subscribed", now=now)
        change = ConsentChange(
            channel="email",
            status="subscribed",
            method="double_opt_in",
            ip=ip,
            detail=f"list:{mailing_list.name}",
        )
        await set_consent(conn, contact_id, change, now=now)
    return mailing_list


async def confirm_subscription(
    db: Database, links: LinkSigner, token: str, ip: str | None, now: datetime
) -> str:
    """The ``/u/confirm/{token}`` action: confirm in one transaction; returns the list name.

    The web layer should confirm on POST only and answer GET with a page holding a
    button, because mail scanners fetch links before the person sees them.

    Raises:
        InvalidInput: (field "token") bad, expired or cancelled link.
        NotFound: the list or the membership no longer exists.
    """
    async with db.write() as conn:
        mailing_list = await confirm(conn, token, links=links, ip=ip, now=now)
    return mailing_list.name


def build_confirmation(
    *, sender: str, recipient: str, list_name: str, link: str, now: datetime
) -> bytes:
    """The confirmation mail: plain text with the link, CRLF line ends (RFC 5322).

    Args:
        sender: the From address.
        recipient: the To address.
        list_name: named in the subject and the text.
        link: the confirmation URL.
        now: the Date header.
    """
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = f"Please confirm your subscription to {list_name}"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "courriel.invalid")
    # RFC 3834 §5: a message sent by a program in answer to a request.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"Hello,\n\n"
        f"Someone (hopefully you) asked to subscribe {recipient} to {list_name}.\n"
        f"To confirm, open this link within {CONFIRM_MAX_AGE.days} days:\n\n"
        f"{link}\n\n"
        f"If you did not ask for this, ignore this message: you will not be subscribed.\n"
    )
    return message.as_bytes()


async def send_outbox(mailer: Mailer, outbox: list[OutgoingMail]) -> None:
    """Hand every collected mail to the mailer (call after the transaction committed)."""
    for mail in outbox:
        await mailer.send(
            sender=mail.sender,
            recipient=mail.recipient,
            message=mail.message,
            transactional=mail.transactional,
        )
