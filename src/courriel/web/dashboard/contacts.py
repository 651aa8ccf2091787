"""The Contacts pages: search and filters, a contact's profile, GDPR export and erasure.

Routes (area "marketing"; see docs/dashboard/contacts.md):

- ``GET /contacts``: search (the API's prefix search,
  :func:`courriel.marketing.contacts.search_contacts`) narrowed by list, tag, consent
  status and country, paged by id (``after``), never OFFSET. htmx requests get only the
  results table (live search); without JavaScript the form is a plain GET.
- ``GET /contacts/{id}``: the profile (fields, location, attributes, tags, lists, order
  aggregates, consent proof, and the timeline of :mod:`courriel.marketing.profile`,
  100 entries a page with a "more" link).
- ``GET /contacts/{id}/data.json``: everything held about the person
  (:func:`courriel.marketing.gdpr.export_person`, as ``courriel contacts export-data``).
- ``GET|POST /contacts/{id}/forget``: a confirmation, then
  :func:`courriel.marketing.gdpr.forget` (as ``courriel contacts forget``).

Invariants:
- Viewers read the pages; anything that hands out or erases personal data in bulk or
  for good (the JSON export, the CSV export, import, forget) needs a marketer, checked
  here on top of the area's guard (which lets any viewer GET).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.response import Redirect

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.consent import consent_history
from courriel.marketing.contacts import ContactFilter, get_contact, search_contacts
from courriel.marketing.gdpr import export_person, forget
from courriel.marketing.lists import list_names
from courriel.marketing.profile import contact_lists, timeline
from courriel.marketing.types import CONSENT_STATUSES, Contact
from courriel.web.app import Services
from courriel.web.dashboard.access import PageForbidden, allow, require_session
from courriel.web.dashboard.ids import MAX_ID
from courriel.web.dashboard.render import page

__all__ = [
    "PAGE_SIZE",
    "ROUTES",
    "TIMELINE_PAGE",
    "contact_not_found",
    "load_contact",
    "require_marketer",
]

PAGE_SIZE = 50
TIMELINE_PAGE = 100
_FILTERS = ("q", "list", "tag", "status", "country")
# Messages after a redirect, by key: the URL never carries the text itself.
_NOTICES = {
    "forgotten": "The contact was erased; its address hash is kept so it is never added again.",
}


def require_marketer(request: Request[Any, Any, Any], what: str) -> None:
    """Refuse (403 page) a viewer ``what`` (e.g. "export personal data").

    Raises:
        PageForbidden: the user's role is below marketer.
    """
    if not require_session(request).admin.at_least("marketer"):
        raise PageForbidden(detail=f"your role cannot {what}; a marketer or owner can")


def _int(value: str | None, field: str) -> int | None:
    if not value:
        return None
    # isascii: str.isdigit() also accepts "²", which int() refuses.
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise InvalidInput("must be a whole number", field=field)
    return int(value)


def _filter(params: dict[str, str]) -> ContactFilter:
    status = params.get("status") or None
    if status is not None and status not in CONSENT_STATUSES:
        raise InvalidInput(f"must be one of {', '.join(CONSENT_STATUSES)}", field="status")
    return ContactFilter(
        list_id=_int(params.get("list"), "list"),
        tag=params.get("tag") or None,
        email_status=status,
        country=params.get("country") or None,
    )


async def _search(services: Services, params: dict[str, str]) -> dict[str, Any]:
    """The list page's context: rows, the next page's link, or the input error."""
    after = 0
    try:
        where = _filter(params)
        after = _int(params.get("after"), "after") or 0
        async with services.db.read() as conn:
            found = await search_contacts(
                conn, query=params.get("q"), after_id=after, limit=PAGE_SIZE + 1, where=where
            )
    except InvalidInput as exc:
        return {"contacts": [], "next_url": None, "error": str(exc), "error_field": exc.field}
    rows = found[:PAGE_SIZE]
    next_url = None
    if len(found) > PAGE_SIZE:
        kept = {k: params[k] for k in _FILTERS if params.get(k)}
        next_url = "/contacts?" + urlencode({**kept, "after": rows[-1].id})
    return {"contacts": rows, "next_url": next_url, "error": None, "error_field": None}


@get("/contacts", **allow("marketing"))
async def contacts_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The contact list: search and filters; htmx gets the results table only."""
    params = {k: str(v)[:320] for k, v in request.query_params.items()}
    context = await _search(services, params)
    status = 422 if context["error"] else 200
    if request.headers.get("hx-request") == "true":
        return page(request, "contacts/_results.html", status=status, params=params, **context)
    async with services.db.read() as conn:
        all_lists = await list_names(conn)  # names only: no member is counted
    return page(
        request,
        "contacts/list.html",
        status=status,
        active="contacts",
        title="Contacts",
        params=params,
        lists=all_lists,
        statuses=CONSENT_STATUSES,
        notice=_NOTICES.get(request.query_params.get("done") or ""),
        **context,
    )


def contact_not_found(request: Request[Any, Any, Any], contact_id: int) -> Response[str]:
    """The 404 page of an id that names no contact (never one, or forgotten)."""
    return page(
        request,
        "error.html",
        status=404,
        active="contacts",
        title="No such contact",
        message=f"There is no contact {contact_id}; it may have been forgotten.",
    )


async def load_contact(services: Services, contact_id: int) -> Contact | None:
    """The contact ``contact_id`` (one read transaction), or None when no contact has it."""
    if contact_id > MAX_ID:  # names no row; never handed to the driver
        return None
    try:
        async with services.db.read() as conn:
            return await get_contact(conn, contact_id)
    except NotFound:
        return None


@get("/contacts/{contact_id:int}", **allow("marketing"))
async def profile(
    request: Request[Any, Any, Any], services: Services, contact_id: int
) -> Response[str]:
    """A contact's profile with its consent proof and timeline."""
    before = request.query_params.get("before")
    try:
        async with services.db.read() as conn:
            contact = await get_contact(conn, contact_id)
            memberships = await contact_lists(conn, contact_id)
            consents = await consent_history(conn, contact_id)
            history = await timeline(conn, contact_id, before=before, limit=TIMELINE_PAGE)
    except NotFound:
        return contact_not_found(request, contact_id)
    except InvalidInput as exc:
        return page(request, "error.html", status=422, title="Bad link", message=str(exc))
    currency = next((e.currency for e in history.entries if e.currency), None)
    average = contact.total_spent_minor // contact.order_count if contact.order_count else 0
    return page(
        request,
        "contacts/profile.html",
        active="contacts",
        title=contact.email,
        contact=contact,
        memberships=memberships,
        consents=list(reversed(consents)),
        history=history,
        currency=currency or "",
        average_minor=average,
        paged=before is not None,
        can_write=require_session(request).admin.at_least("marketer"),
    )


@get("/contacts/{contact_id:int}/data.json", **allow("marketing"))
async def export_data(
    request: Request[Any, Any, Any], services: Services, contact_id: int
) -> Response[Any]:
    """Everything held about the person, as a JSON download (GDPR access)."""
    require_marketer(request, "export a person's data")
    contact = await load_contact(services, contact_id)
    if contact is None:
        return contact_not_found(request, contact_id)
    person = await export_person(services.db, contact.email)
    body = json.dumps(person, indent=2, ensure_ascii=False, default=str)
    return Response(
        content=body.encode(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="contact-{contact_id}.json"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@get("/contacts/{contact_id:int}/forget", **allow("marketing"))
async def forget_form(
    request: Request[Any, Any, Any], services: Services, contact_id: int
) -> Response[str]:
    """The confirmation before erasing a person."""
    require_marketer(request, "forget a contact")
    contact = await load_contact(services, contact_id)
    if contact is None:
        return contact_not_found(request, contact_id)
    return page(request, "contacts/forget.html", active="contacts", title="Forget", contact=contact)


@post("/contacts/{contact_id:int}/forget", status_code=303, **allow("marketing"))
async def forget_contact(
    request: Request[Any, Any, Any], services: Services, contact_id: int
) -> Response[Any]:
    """Erase the person (GDPR) and keep the hashed suppression; back to the list."""
    contact = await load_contact(services, contact_id)
    if contact is None:
        return contact_not_found(request, contact_id)
    await forget(services.db, contact.email, now=services.clock())
    return Redirect(path="/contacts?done=forgotten", status_code=303)


ROUTES = [contacts_page, profile, export_data, forget_form, forget_contact]
