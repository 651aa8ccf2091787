"""Transactional mail (``POST /api/v1/messages``): one template, one recipient, sent once.

Owns the ``transactional_messages`` rows and the rules of a transactional send:

- **Checks.** The recipient is checked against the suppression list only (never consent: a
  receipt goes to someone who unsubscribed from campaigns); the From: address must be at
  one of courriel's domains (its copies are DKIM-signed there and bounces come back to the
  VERP address on it). The recipient is looked up as a contact by normalised address, to
  personalise the mail and to honour a refused tracking consent; a contact is never created.
- **Idempotency** (draft-ietf-httpapi-idempotency-key-header): a request carries a key
  (one is made up when it does not). The same key with the same request gives the first
  outcome again; with another request it is :class:`InvalidInput` on ``idempotency_key``
  (422); while the first request is still being sent it is :class:`AlreadyExists` (409,
  draft §2.6). Keys are kept as long as their rows (at least the draft's 24 hours).
- **Exactly once.** The row is reserved first, in its own transaction, with status
  ``pending``: the unique index on ``idempotency_key`` lets one request of a key through.
  Its id is the copy's reference (``t<id>``: VERP return path, tracking links). The
  message is then handed to :meth:`Mailer.send` whose ``on_commit`` flips the row to
  ``queued`` in the transaction that stores the message, so ``queued`` holds exactly when
  the message is durably queued. A send that fails releases the reservation (deletes the
  ``pending`` row, never a ``queued`` one). A crash between the two leaves a ``pending``
  row with no message; a retry of its key after :data:`PENDING_LEASE` takes it over and
  sends it (the lease keeps a retry from racing a send still in flight).

Statuses: ``pending`` (reserved, not yet queued), ``queued``; the feedback processor and
the tracker move rows on to ``bounced`` / ``complained`` and set ``opened_at`` /
``clicked_at``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing import dailystats
from courriel.marketing.campaigns.message import (
    Author,
    Content,
    Copy,
    Footer,
    build_copy,
    copy_urls,
)
from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.marketing.contacts import contact_to_dict, find_contact_id, get_contact
from courriel.marketing.normalise import normalise_email
from courriel.marketing.ports import Mailer
from courriel.marketing.recommend import prefetch
from courriel.marketing.suppression import is_suppressed
from courriel.marketing.templates.render import RenderContext, Renderer
from courriel.marketing.templates.service import Template, get_template, get_template_by_name
from courriel.storage.db import Database
from courriel.storage.models.campaigns import transactional_messages as tm
from courriel.storage.models.mail import domains

__all__ = [
    "MAX_KEY",
    "PENDING_LEASE",
    "MessageRequest",
    "MessageStatus",
    "Outcome",
    "Settings",
    "get_message",
    "request_hash",
    "send_message",
]

MAX_KEY = 255  # octets of an idempotency key (the column's width)
# How long a reservation whose send has not committed is left to its request before a
# retry of the same key may take it over (a send never takes nearly this long).
PENDING_LEASE = timedelta(minutes=5)
_AUTO_KEY = "auto:"  # prefix of the keys made up for requests without one
_Recommend = Callable[[str, int], Sequence[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What every transactional message is built with (from config and shared secrets)."""

    links: Links  # tracking and unsubscribe links under http.public_url
    verp_key: bytes  # the shared secret that signs VERP return paths
    shop: Mapping[str, str] = field(default_factory=dict)  # name, url, address, currency
    open_pixel: bool = True  # tracking.open_pixel
    feedback_sender: str = ""  # SenderId of Feedback-ID; empty: no Feedback-ID field


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRequest:
    """One request to send, as the client gave it."""

    template: str | int  # a template's name or id
    to: str
    from_address: str
    data: Mapping[str, Any] = field(default_factory=dict)  # the template's ``data``
    subject: str | None = None  # a Jinja template too; templates carry no subject
    from_name: str | None = None
    reply_to: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a send request did."""

    id: int
    status: str
    replay: bool  # True: the key was seen before; this is the first request's outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStatus:
    """A transactional message as the API shows it."""

    id: int
    status: str
    email: str
    subject: str
    created_at: datetime
    opened_at: datetime | None
    clicked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "id": self.id,
            "status": self.status,
            "to": self.email,
            "subject": self.subject,
            "created_at": self.created_at.isoformat(),
            "opened_at": None if self.opened_at is None else self.opened_at.isoformat(),
            "clicked_at": None if self.clicked_at is None else self.clicked_at.isoformat(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class _Checked:
    """A request after its pure checks."""

    request: MessageRequest
    to: str  # normalised
    from_address: str  # normalised
    from_name: str | None  # one line
    reply_to: str | None  # normalised
    key: str
    digest: str  # request_hash


@dataclass(frozen=True, slots=True, kw_only=True)
class _Prepared:
    """What the send reads before it reserves a row."""

    template: Template
    renderer: Renderer
    contact: dict[str, Any] | None  # contact_to_dict of the recipient, when known


def request_hash(request: MessageRequest) -> str:
    """SHA-256 hex of the request without its key: what a replay must match."""
    body = {
        "template": request.template,
        "to": request.to,
        "from": request.from_address,
        "from_name": request.from_name,
        "reply_to": request.reply_to,
        "subject": request.subject,
        "data": request.data,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _check(request: MessageRequest) -> _Checked:
    """The checks that need no database; InvalidInput naming the field."""
    to = normalise_email(request.to, field="to")
    sender = normalise_email(request.from_address, field="from")
    reply_to = None
    if request.reply_to is not None:
        reply_to = normalise_email(request.reply_to, field="reply_to")
    from_name = request.from_name
    # A header field is one line (RFC 5322 §2.2): CR or LF in a name would start another.
    if from_name is not None and any(c in from_name for c in "\r\n\0"):
        raise InvalidInput("from_name must be one line", field="from_name")
    key = request.idempotency_key
    if key is None:
        key = _AUTO_KEY + uuid.uuid4().hex
    elif not key or len(key.encode("utf-8")) > MAX_KEY or not key.isprintable():
        raise InvalidInput(
            f"an idempotency key is 1 to {MAX_KEY} printable characters", field="idempotency_key"
        )
    if isinstance(request.template, str) and not request.template.strip():
        raise InvalidInput("a template name or id is required", field="template")
    if request.subject is not None and not request.subject.strip():
        raise InvalidInput("the subject is empty", field="subject")
    return _Checked(
        request=request,
        to=to,
        from_address=sender,
        from_name=from_name,
        reply_to=reply_to,
        key=key,
        digest=request_hash(request),
    )


async def send_message(
    db: Database, mailer: Mailer, settings: Settings, request: MessageRequest, *, now: datetime
) -> Outcome:
    """Send one transactional message (or give the outcome of its key's first request).

    Raises:
        InvalidInput: a bad field (named), a suppressed recipient (``to``), a template that
            fails to render (``template`` / ``subject``, with line and column), a key reused
            with another request (``idempotency_key``).
        NotFound: no such template.
        AlreadyExists: the key's first request is still being sent.
        DeliveryRefused: the queue refused the message for now; nothing was kept.
    """
    checked = _check(request)
    async with db.read() as conn:
        row = await _row_by_key(conn, checked.key)
        prepared = await _prepare(conn, checked) if row is None else None
    if row is not None or prepared is None:
        assert row is not None
        return await _replay(db, mailer, settings, checked, row, now=now)
    message_id = await _reserve(db, checked, prepared, now)
    if message_id is None:  # another request of the key reserved it meanwhile
        return await send_message(db, mailer, settings, request, now=now)
    return await _send(db, mailer, settings, checked, prepared, message_id=message_id, now=now)


async def _replay(
    db: Database, mailer: Mailer, settings: Settings, checked: _Checked, row: RowMapping,
    *, now: datetime,
) -> Outcome:  # fmt: skip
    if row["request_hash"] != checked.digest:
        raise InvalidInput(
            "this idempotency key was used with another request", field="idempotency_key"
        )
    if row["status"] != "pending":
        return Outcome(id=int(row["id"]), status=str(row["status"]), replay=True)
    if row["created_at"] > now - PENDING_LEASE or not await _take_over(db, row, now):
        raise AlreadyExists("the first request with this idempotency key is still being sent")
    # A crash left the reservation without its message: send it now, under the same id.
    try:
        async with db.read() as conn:
            prepared = await _prepare(conn, checked)
    except Exception:
        await _release(db, int(row["id"]))
        raise
    return await _send(db, mailer, settings, checked, prepared, message_id=int(row["id"]), now=now)


async def _row_by_key(conn: AsyncConnection, key: str) -> RowMapping | None:
    found = await conn.execute(select(tm).where(tm.c.idempotency_key == key))
    return found.mappings().first()


async def _prepare(conn: AsyncConnection, checked: _Checked) -> _Prepared:
    """Template, contact and suppression: everything read before the reservation."""
    request = checked.request
    template = await _template(conn, request.template)
    renderer = _renderer(template, request.subject)
    domain = checked.from_address.rpartition("@")[2]
    if await conn.scalar(select(domains.c.id).where(domains.c.name == domain)) is None:
        raise InvalidInput(f"{domain} is not one of courriel's domains", field="from")
    if await is_suppressed(conn, checked.to):
        raise InvalidInput("the recipient is on the suppression list", field="to")
    contact_id = await find_contact_id(conn, checked.to)
    contact = None
    if contact_id is not None:
        contact = contact_to_dict(await get_contact(conn, contact_id))
    return _Prepared(template=template, renderer=renderer, contact=contact)


async def _template(conn: AsyncConnection, ident: str | int) -> Template:
    if isinstance(ident, int) and not isinstance(ident, bool):
        return await get_template(conn, ident)
    if isinstance(ident, str) and ident.strip().isdigit():
        try:
            return await get_template(conn, int(ident.strip()))
        except NotFound:
            pass  # a template may be named "42"
    return await get_template_by_name(conn, str(ident))


def _renderer(template: Template, subject: str | None) -> Renderer:
    if subject is None:
        raise InvalidInput("a subject is required (templates carry none)", field="subject")
    try:
        return _compiled(template.html, subject)
    except InvalidInput as exc:
        raise _as_template_error(exc) from None


@functools.lru_cache(maxsize=64)
def _compiled(html: str, subject: str) -> Renderer:
    # Compiling the Jinja of a template takes milliseconds on the event loop; a shop sends
    # the same few templates and subjects again and again. Keyed by the text itself, so an
    # edited template is compiled afresh; a Renderer is immutable and thread-safe.
    return Renderer(html, subject)


def _as_template_error(exc: InvalidInput) -> InvalidInput:
    # The renderer names the template's own fields ("source"); the API names "template".
    field_name = "subject" if exc.field == "subject" else "template"
    return InvalidInput(str(exc), field=field_name)


async def _reserve(
    db: Database, checked: _Checked, prepared: _Prepared, now: datetime
) -> int | None:
    """Insert the ``pending`` row; None when another request of the key got there first."""
    values = {
        "idempotency_key": checked.key,
        "request_hash": checked.digest,
        "template_id": prepared.template.id,
        "contact_id": None if prepared.contact is None else prepared.contact["id"],
        "email": checked.to,
        "subject": (checked.request.subject or "")[:998],
        "status": "pending",
        "created_at": now,
    }
    async with db.write() as conn:
        inserted = await conn.execute(db.insert_ignore(tm).values(**values).returning(tm.c.id))
        found = inserted.scalar_one_or_none()
    return None if found is None else int(found)


async def _take_over(db: Database, row: RowMapping, now: datetime) -> bool:
    """Claim a stale reservation (compare-and-set on its time): one retry wins."""
    async with db.write() as conn:
        claimed = await conn.execute(
            update(tm)
            .where(tm.c.id == row["id"], tm.c.status == "pending")
            .where(tm.c.created_at == row["created_at"])
            .values(created_at=now)
        )
    return claimed.rowcount == 1


async def _release(db: Database, message_id: int) -> None:
    """Forget a reservation whose message was not queued (never a queued row)."""
    async with db.write() as conn:
        await conn.execute(delete(tm).where(tm.c.id == message_id, tm.c.status == "pending"))


def _mark_queued(message_id: int, subject: str, now: datetime) -> Callable[[Connection], None]:
    """The ``on_commit`` of a copy: its row becomes ``queued`` with the message, and the
    day's ``sent`` total moves (once: only a pending row turns queued)."""

    def mark(conn: Connection) -> None:
        pending = (tm.c.id == message_id) & (tm.c.status == "pending")
        result = conn.execute(update(tm).where(pending).values(status="queued", subject=subject))
        if result.rowcount == 1:
            dailystats.bump(conn, "sent", now)

    return mark


async def _send(
    db: Database, mailer: Mailer, settings: Settings, checked: _Checked, prepared: _Prepared,
    *, message_id: int, now: datetime,
) -> Outcome:  # fmt: skip
    try:
        copy, subject = await _build(
            db, settings, checked, prepared, message_id=message_id, now=now
        )
        accepted = await mailer.send(
            sender=copy.sender,
            recipient=copy.recipient,
            message=copy.message,
            transactional=True,
            on_commit=_mark_queued(message_id, subject, now),
        )
    except Exception:
        await _release(db, message_id)
        raise
    if not accepted:
        await _release(db, message_id)
        raise InvalidInput("the recipient's address was refused", field="to")
    return Outcome(id=message_id, status="queued", replay=False)


async def _build(
    db: Database, settings: Settings, checked: _Checked, prepared: _Prepared,
    *, message_id: int, now: datetime,
) -> tuple[Copy, str]:  # fmt: skip
    """Render the copy of ``t<message_id>`` and build its message; and its subject."""
    ref = Ref("t", message_id)
    urls = copy_urls(settings.links, ref)
    contact = prepared.contact
    context = RenderContext(
        contact=contact if contact is not None else {"email": checked.to, "attributes": {}},
        shop=dict(settings.shop),
        unsubscribe_url=urls.unsubscribe,
        preferences_url=urls.preferences,
        view_in_browser_url=urls.view,
        recommendations=await _recommendations(db, prepared, now),
        data=dict(checked.request.data),
    )
    try:
        rendered = prepared.renderer.render(context)
    except InvalidInput as exc:
        raise _as_template_error(exc) from None
    copy = build_copy(
        ref=ref,
        recipient=checked.to,
        author=Author(
            address=checked.from_address, name=checked.from_name, reply_to=checked.reply_to
        ),
        content=Content(subject=rendered.subject, html=rendered.html, text=rendered.text),
        urls=urls,
        footer=Footer(
            shop_name=settings.shop.get("name", ""), shop_address=settings.shop.get("address", "")
        ),
        links=settings.links,
        verp_key=settings.verp_key,
        feedback=_feedback(settings, prepared.template.id),
        open_pixel=settings.open_pixel and _tracking_consent(contact),
        now=now,
    )
    return copy, rendered.subject


async def _recommendations(db: Database, prepared: _Prepared, now: datetime) -> _Recommend:
    """The recipient's ``recommendations(kind, n)``, prefetched (the render does no I/O)."""
    calls = [(kind, max(n, 1)) for kind, n in prepared.renderer.recommendation_calls]
    if not calls:
        return lambda kind, n: ()
    contact_id = None if prepared.contact is None else int(prepared.contact["id"])
    async with db.read() as conn:
        book = await prefetch(conn, [] if contact_id is None else [contact_id], calls, now=now)
    return book.for_contact(contact_id)


def _tracking_consent(contact: Mapping[str, Any] | None) -> bool:
    # docs/campaigns.md: no pixel for a contact whose tracking_consent is false; an unknown
    # recipient has refused nothing.
    return contact is None or contact.get("attributes", {}).get("tracking_consent") is not False


def _feedback(settings: Settings, template_id: int) -> str | None:
    # Gmail's Feedback-ID "a:b:c:SenderId": template, (no variant), type, sender.
    if not settings.feedback_sender:
        return None
    return f"{template_id}:0:transactional:{settings.feedback_sender}"


async def get_message(conn: AsyncConnection, message_id: int) -> MessageStatus:
    """One transactional message's status.

    Raises:
        NotFound: no such message.
    """
    row = (await conn.execute(select(tm).where(tm.c.id == message_id))).mappings().first()
    if row is None:
        raise NotFound(f"no message {message_id}")
    return MessageStatus(
        id=int(row["id"]),
        status=str(row["status"]),
        email=str(row["email"]),
        subject=str(row["subject"]),
        created_at=row["created_at"],
        opened_at=row["opened_at"],
        clicked_at=row["clicked_at"],
    )
