"""``/lists``: marketing lists, their members, and double opt-in subscriptions.

Owns the routes under ``/lists`` (NAV key ``lists``, area ``marketing``): every role reads,
marketers and owners create and delete lists and add and remove members. Calls
:mod:`courriel.marketing.lists` and the API's
:func:`~courriel.web.api.v1.common.email_or_contact`, as ``/api/v1/lists`` does.

Invariants:
- Nothing is counted on page load: a list's member counts read every membership row
  (about 0.3-0.9 s for 1M members), so the pages read lists with ``counts=False`` and a
  Count button fetches one list's counts on demand (``/lists/{id}/count``, a fragment).
- Members are paged by contact id (``?after=``), never by OFFSET: :data:`PAGE` a page.
- Adding a member to a double opt-in list makes them pending and sends the confirmation
  mail through the Mailer after the transaction commits (the API's order: a rolled-back
  subscription sends nothing). The consent proof's method is ``dashboard`` with no IP:
  the person did not ask from this browser, a marketer did on their behalf.
- Removing a member marks them unsubscribed from the list, as the API's DELETE does; their
  email consent is unchanged. Deleting a list removes its memberships, not the contacts.
- Ids outside 1..2^63-1 are a 404 page, never a database overflow.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing.lists import (
    MEMBER_STATUSES,
    OptIn,
    create_list,
    delete_list,
    get_list,
    list_lists,
    members,
    send_outbox,
    subscribe,
    unsubscribe,
)
from courriel.marketing.types import MailingList, OutgoingMail
from courriel.web.api.v1.common import email_or_contact
from courriel.web.app import Services
from courriel.web.dashboard.ids import MAX_ID
from courriel.web.dashboard.render import page
from courriel.web.dashboard.server_common import Form, field, guarded

__all__ = ["PAGE", "ROUTES"]

PAGE = 50  # members per page


def _checked(value: int, what: str) -> int:
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no {what} {value}")
    return value


async def _lists_page(
    request: Request[Any, Any, Any], services: Services, *, status: int = 200, **context: Any
) -> Response[str]:
    async with services.db.read() as conn:
        found = await list_lists(conn, counts=False)
    for key in ("error", "done", "list_name"):
        context.setdefault(key, "")
    context.setdefault("double_opt_in", False)
    return page(
        request,
        "lists/index.html",
        status=status,
        active="lists",
        title="Lists",
        lists=found,
        **context,
    )


@get("/lists", **guarded("marketing"))
async def lists_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """Every list by name, each with a Count button (and, for marketers, the create form)."""
    deleted = request.query_params.get("deleted", "")
    done = f"List {deleted} deleted; its contacts stay." if deleted else ""
    return await _lists_page(request, services, done=done)


@get("/lists/{list_id:int}/count", **guarded("marketing"))
async def list_count(
    request: Request[Any, Any, Any], services: Services, list_id: FromPath[int]
) -> Response[str]:
    """A fragment: how many members of the list are subscribed and pending now."""
    async with services.db.read() as conn:
        counted = await get_list(conn, _checked(list_id, "list"))
    return page(request, "lists/count.html", item=counted)


@post("/lists", **guarded("marketing"))
async def add_list(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[Any]:
    """Create a list, then open its page."""
    name = field(data, "name", limit=256)
    double_opt_in = data.get("double_opt_in") == "on"
    try:
        async with services.db.write() as conn:
            made = await create_list(
                conn, name=name, double_opt_in=double_opt_in, now=services.clock()
            )
    except (InvalidInput, AlreadyExists) as exc:
        return await _lists_page(
            request,
            services,
            status=422,
            error=str(exc),
            list_name=name,
            double_opt_in=double_opt_in,
        )
    return Redirect(path=f"/lists/{made.id}?created=1", status_code=303)


def _cursor(request: Request[Any, Any, Any]) -> tuple[int, str | None, str]:
    """The page's ``after`` cursor and ``status`` filter, and an error for a bad filter."""
    raw_after = request.query_params.get("after", "0")
    after = int(raw_after) if raw_after.isascii() and raw_after.isdigit() else 0
    after = min(after, MAX_ID)
    status = request.query_params.get("status") or None
    if status is not None and status not in MEMBER_STATUSES:
        return after, None, f"status must be one of {', '.join(MEMBER_STATUSES)}"
    return after, status, ""


async def _list_detail(
    request: Request[Any, Any, Any],
    services: Services,
    list_id: int,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response[str]:
    after, status, bad_filter = _cursor(request)
    async with services.db.read() as conn:
        item: MailingList = await get_list(conn, _checked(list_id, "list"), counts=False)
        rows = await members(conn, item.id, status=status, after_id=after, limit=PAGE + 1)
    context.setdefault("error", bad_filter)
    context.setdefault("email", "")
    return page(
        request,
        "lists/detail.html",
        status=422 if bad_filter and status_code == 200 else status_code,
        active="lists",
        title=item.name,
        item=item,
        members=rows[:PAGE],
        next_after=rows[PAGE - 1].contact_id if len(rows) > PAGE else None,
        after=after,
        member_status=status or "",
        statuses=MEMBER_STATUSES,
        created=request.query_params.get("created") == "1",
        added=request.query_params.get("added", ""),
        removed=request.query_params.get("removed") == "1",
        **context,
    )


@get("/lists/{list_id:int}", **guarded("marketing"))
async def list_page(
    request: Request[Any, Any, Any], services: Services, list_id: FromPath[int]
) -> Response[str]:
    """A list and its members, by contact id, ``PAGE`` at a time (``?after=``, ``?status=``)."""
    return await _list_detail(request, services, list_id)


@post("/lists/{list_id:int}/members", **guarded("marketing"))
async def add_member(
    request: Request[Any, Any, Any], services: Services, list_id: FromPath[int], data: Form
) -> Response[Any]:
    """Subscribe an address (a new contact when unknown); double opt-in: pending + mail."""
    email = field(data, "email", limit=320)
    outbox: list[OutgoingMail] = []
    optin = OptIn(links=services.links, public_url=services.public_url, sender=services.mail_sender)
    try:
        async with services.db.write() as conn:
            item = await get_list(conn, _checked(list_id, "list"), counts=False)
            if not email:
                raise InvalidInput("give the member's email address", field="email")
            now = services.clock()
            contact_id = await email_or_contact(
                conn, email=email, contact_id=None, source="dashboard", now=now
            )
            status = await subscribe(
                conn, item.id, contact_id, method="dashboard", now=now, optin=optin, outbox=outbox
            )
    except InvalidInput as exc:
        return await _list_detail(
            request, services, list_id, status_code=422, error=str(exc), email=email
        )
    await send_outbox(services.mailer, outbox)
    return Redirect(path=f"/lists/{list_id}?added={status}", status_code=303)


@post("/lists/{list_id:int}/members/{contact_id:int}/remove", **guarded("marketing"))
async def remove_member(
    services: Services, list_id: FromPath[int], contact_id: FromPath[int]
) -> Response[Any]:
    """Unsubscribe a member from the list (their email consent stays)."""
    async with services.db.write() as conn:
        await get_list(conn, _checked(list_id, "list"), counts=False)
        done = await unsubscribe(
            conn, list_id, _checked(contact_id, "contact"), now=services.clock()
        )
        if not done:
            raise NotFound("this contact is not a subscribed or pending member of the list")
    return Redirect(path=f"/lists/{list_id}?removed=1", status_code=303)


@post("/lists/{list_id:int}/delete", **guarded("marketing"))
async def remove_list(services: Services, list_id: FromPath[int]) -> Response[Any]:
    """Delete the list and its memberships (the contacts and their consent stay)."""
    async with services.db.write() as conn:
        item = await get_list(conn, _checked(list_id, "list"), counts=False)
        await delete_list(conn, item.id)
    return Redirect(path=f"/lists?deleted={quote(item.name)}", status_code=303)


ROUTES = [lists_page, list_count, add_list, list_page, add_member, remove_member, remove_list]
