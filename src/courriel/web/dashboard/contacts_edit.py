"""Adding and editing a contact: its fields, its email consent, its list memberships.

Routes (area "marketing", marketers and owners only; see docs/dashboard/contacts.md):

- ``GET|POST /contacts/new``: the form, then the API's upsert
  (:func:`courriel.marketing.contacts.upsert_contact`, as ``PUT /api/v1/contacts``).
- ``GET|POST /contacts/{id}/edit``: the same form over a stored contact (its address is
  its identity and is not edited here).
- ``POST /contacts/{id}/lists``: subscribe to a list (:func:`courriel.marketing.lists.subscribe`,
  as ``POST /api/v1/lists/{id}/members``; a double opt-in list sends its confirmation
  after commit); ``POST /contacts/{id}/lists/{list_id}/remove``: unsubscribe from it.

Invariants:
- One form submission is one write transaction: the upsert and the consent change commit
  together or not at all, so bad input (phone, country, time zone, address, attribute
  JSON) re-renders the form with 422, the field named, and nothing written.
- A consent change made here is recorded by :func:`courriel.marketing.consent.set_consent`
  with its proof: method "dashboard", the admin's IP address (as
  :func:`courriel.web.clientip.client_ip` sees it) and "by <admin address>" as detail.
- The upsert's rules hold: an empty field clears it, attributes merge key by key and tags
  are only added (nothing here removes a tag or an attribute key).
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.consent import set_consent
from courriel.marketing.contacts import find_contact_id, get_contact, upsert_contact
from courriel.marketing.lists import OptIn, list_lists, send_outbox, subscribe, unsubscribe
from courriel.marketing.profile import contact_lists
from courriel.marketing.types import (
    CONSENT_STATUSES,
    ConsentChange,
    Contact,
    ContactData,
    OutgoingMail,
)
from courriel.web.app import Services
from courriel.web.clientip import client_ip
from courriel.web.dashboard.access import allow, require_session
from courriel.web.dashboard.contacts import contact_not_found, load_contact, require_marketer
from courriel.web.dashboard.ids import MAX_ID
from courriel.web.dashboard.render import page
from courriel.web.dashboard.server_common import Form

__all__ = ["ROUTES"]

TEXT_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "country",
    "region",
    "city",
    "postal_code",
    "time_zone",
)
_LIMIT = 2048  # characters kept of a text field (the service refuses anything longer)
_ATTRIBUTES_LIMIT = 70_000  # a little over the 64 KiB the service allows


def _values_of(contact: Contact | None) -> dict[str, str]:
    """The form's initial values: the stored contact's, or blanks for a new one."""
    if contact is None:
        blank = dict.fromkeys(TEXT_FIELDS, "")
        return {**blank, "email": "", "attributes": "", "tags": "", "email_status": "never"}
    values = {name: getattr(contact, name) or "" for name in TEXT_FIELDS}
    attributes = json.dumps(contact.attributes, indent=2, ensure_ascii=False, sort_keys=True)
    values.update(
        email=contact.email,
        attributes=attributes if contact.attributes else "",
        tags="",
        email_status=contact.email_status,
    )
    return values


def _submitted(data: dict[str, str]) -> dict[str, str]:
    names = (*TEXT_FIELDS, "email", "tags", "email_status")
    values = {name: str(data.get(name, ""))[:_LIMIT] for name in names}
    values["attributes"] = str(data.get("attributes", ""))[:_ATTRIBUTES_LIMIT]
    return values


def _attributes(text: str) -> dict[str, Any] | None:
    """The attribute JSON of the form (None when blank: attributes unchanged).

    Raises:
        InvalidInput: (field "attributes") not JSON, or not an object.
    """
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"not valid JSON: {exc}", field="attributes") from exc
    if not isinstance(value, dict):
        raise InvalidInput('must be a JSON object, e.g. {"plan": "gold"}', field="attributes")
    return value


def _contact_data(values: dict[str, str], email: str) -> ContactData:
    """The upsert's input: every text field as typed ("" clears it), tags to add."""
    tags = [tag for tag in values["tags"].split(",") if tag.strip()]
    return ContactData(
        email=email,
        attributes=_attributes(values["attributes"]),
        tags=tuple(tags) or None,
        source="dashboard",
        **{name: values[name] for name in TEXT_FIELDS},
    )


def _consent(
    request: Request[Any, Any, Any], services: Services, status: str
) -> ConsentChange | None:
    """The email consent decision of the form, with the dashboard's proof (None: absent).

    Raises:
        InvalidInput: (field "email_status") an unknown status.
    """
    if not status:
        return None
    if status not in CONSENT_STATUSES:
        raise InvalidInput(f"must be one of {', '.join(CONSENT_STATUSES)}", field="email_status")
    admin = require_session(request).admin
    return ConsentChange(
        channel="email",
        status=status,  # checked against CONSENT_STATUSES above
        method="dashboard",
        ip=client_ip(request, services.trusted_proxies),
        detail=f"by {admin.email}",
    )


async def _save(
    conn: AsyncConnection, data: ContactData, consent: ConsentChange | None, *, services: Services
) -> int:
    """Upsert the contact and record the consent change, inside the caller's transaction."""
    now = services.clock()
    contact_id = await upsert_contact(conn, data, now=now)
    current = (await get_contact(conn, contact_id)).email_status
    if consent is not None and consent.status != current:
        await set_consent(conn, contact_id, consent, now=now)
    return contact_id


async def _form(
    request: Request[Any, Any, Any],
    services: Services,
    contact: Contact | None,
    values: dict[str, str],
    *,
    error: InvalidInput | None = None,
    status: int = 200,
) -> Response[str]:
    async with services.db.read() as conn:
        memberships = await contact_lists(conn, contact.id) if contact else []
        all_lists = await list_lists(conn) if contact else []
    active_ids = {m.list_id for m in memberships if m.status != "unsubscribed"}
    title = f"Edit {contact.email}" if contact else "New contact"
    return page(
        request,
        "contacts/edit.html",
        status=status,
        active="contacts",
        title=title,
        contact=contact,
        values=values,
        fields=TEXT_FIELDS,
        statuses=CONSENT_STATUSES,
        memberships=memberships,
        addable=[item for item in all_lists if item.id not in active_ids],
        error=str(error) if error else None,
        error_field=(error.field or "") if error else "",
    )


@get("/contacts/new", **allow("marketing"))
async def new_form(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The form of a new contact."""
    require_marketer(request, "add contacts")
    return await _form(request, services, None, _values_of(None))


@post("/contacts/new", status_code=303, **allow("marketing"))
async def create(request: Request[Any, Any, Any], services: Services, data: Form) -> Response[Any]:
    """Create the contact (refused when the address has one already); to its profile."""
    values = _submitted(data)
    try:
        consent = _consent(request, services, values["email_status"])
        contact_data = _contact_data(values, values["email"])
        async with services.db.write() as conn:
            if await find_contact_id(conn, values["email"]) is not None:
                raise InvalidInput("a contact has this address already", field="email")
            contact_id = await _save(conn, contact_data, consent, services=services)
    except InvalidInput as exc:
        return await _form(request, services, None, values, error=exc, status=422)
    return Redirect(path=f"/contacts/{contact_id}", status_code=303)


@get("/contacts/{contact_id:int}/edit", **allow("marketing"))
async def edit_form(
    request: Request[Any, Any, Any], services: Services, contact_id: FromPath[int]
) -> Response[str]:
    """The form over a stored contact, with its lists."""
    require_marketer(request, "edit contacts")
    contact = await load_contact(services, contact_id)
    if contact is None:
        return contact_not_found(request, contact_id)
    return await _form(request, services, contact, _values_of(contact))


@post("/contacts/{contact_id:int}/edit", status_code=303, **allow("marketing"))
async def update(
    request: Request[Any, Any, Any], services: Services, contact_id: FromPath[int], data: Form
) -> Response[Any]:
    """Save the form over the contact (one transaction); to its profile."""
    contact = await load_contact(services, contact_id)
    if contact is None:
        return contact_not_found(request, contact_id)
    values = {**_submitted(data), "email": contact.email}
    try:
        consent = _consent(request, services, values["email_status"])
        contact_data = _contact_data(values, contact.email)
        async with services.db.write() as conn:
            await _save(conn, contact_data, consent, services=services)
    except InvalidInput as exc:
        return await _form(request, services, contact, values, error=exc, status=422)
    return Redirect(path=f"/contacts/{contact_id}", status_code=303)


@post("/contacts/{contact_id:int}/lists", status_code=303, **allow("marketing"))
async def add_to_list(
    request: Request[Any, Any, Any], services: Services, contact_id: FromPath[int], data: Form
) -> Response[Any]:
    """Subscribe the contact to a list, with the dashboard's consent proof."""
    contact = await load_contact(services, contact_id)
    if contact is None:
        return contact_not_found(request, contact_id)
    raw = str(data.get("list_id", "")).strip()
    if not raw.isdigit() or len(raw) > 18:
        error = InvalidInput("choose a list", field="list_id")
        return await _form(request, services, contact, _values_of(contact), error=error, status=422)
    outbox: list[OutgoingMail] = []
    optin = OptIn(links=services.links, public_url=services.public_url, sender=services.mail_sender)
    try:
        async with services.db.write() as conn:
            await subscribe(
                conn,
                int(raw),
                contact_id,
                method="dashboard",
                ip=client_ip(request, services.trusted_proxies),
                now=services.clock(),
                optin=optin,
                outbox=outbox,
            )
    except NotFound as exc:
        return page(request, "error.html", status=404, title="Not found", message=str(exc))
    await send_outbox(services.mailer, outbox)
    return Redirect(path=f"/contacts/{contact_id}/edit", status_code=303)


@post(
    "/contacts/{contact_id:int}/lists/{list_id:int}/remove", status_code=303, **allow("marketing")
)
async def remove_from_list(
    request: Request[Any, Any, Any],
    services: Services,
    contact_id: FromPath[int],
    list_id: FromPath[int],
) -> Response[Any]:
    """Unsubscribe the contact from the list (its email consent is unchanged)."""
    contact = await load_contact(services, contact_id)
    if contact is None:
        return contact_not_found(request, contact_id)
    removed = False
    if list_id <= MAX_ID:
        async with services.db.write() as conn:
            removed = await unsubscribe(conn, list_id, contact_id, now=services.clock())
    if not removed:
        message = "This contact is not subscribed to that list."
        return page(request, "error.html", status=404, title="Not found", message=message)
    return Redirect(path=f"/contacts/{contact_id}/edit", status_code=303)


ROUTES = [new_form, create, edit_form, update, add_to_list, remove_from_list]
