"""``/api/v1/contacts``: search, read, upsert by address, GDPR export and erasure.

A contact is named in a path by its id (digits) or by its address. ``PUT`` upserts by the
address in the body (``None``/absent fields stay unchanged, attributes merge key by key,
tags are added) and may record consent with its proof in the same transaction.

Invariants:
- An address that asked to be forgotten (a ``hash`` suppression, reason "forgotten") is
  not re-created through the API: the GDPR erasure must stick.
- ``DELETE`` is the GDPR erasure (:func:`courriel.marketing.gdpr.forget`): the person and
  their events and orders go, a hashed suppression stays.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, delete, get, put
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.consent import consent_history, consent_record_to_dict, set_consent
from courriel.marketing.contacts import (
    FORGOTTEN_MESSAGE,
    contact_to_dict,
    find_contact_id,
    get_contact,
    search_contacts,
    upsert_contact,
)
from courriel.marketing.gdpr import export_person, forget
from courriel.marketing.suppression import is_forgotten
from courriel.marketing.types import ConsentChange, ContactData
from courriel.web.api.v1.common import After, Limit, contact_ref, page
from courriel.web.app import Services
from courriel.web.auth import requires

__all__ = ["ROUTES", "ConsentIn", "ContactIn"]

_TAG = "contacts"


class ConsentIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A consent decision sent with an upsert, with its proof."""

    channel: Literal["email", "sms"]
    status: Literal["subscribed", "unsubscribed", "pending", "never"]
    method: str = "api"  # how it was given: api, form, checkout, …
    ip: str | None = None  # the person's IP when they gave it, if known
    detail: str | None = None  # e.g. the form or page


class ContactIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A contact to create or update; absent or null fields stay unchanged."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    postal_code: str | None = None
    time_zone: str | None = None
    attributes: dict[str, Any] | None = None
    tags: list[str] | None = None
    source: str | None = None
    consent: list[ConsentIn] | None = None


@get(
    "/api/v1/contacts",
    summary="Search contacts by address or name prefix (case-insensitive), paged by id",
    tags=[_TAG],
    **requires("contacts:read"),
)
async def search(
    services: Services,
    after: After = 0,
    limit: Limit = 100,
    q: Annotated[
        str | None,
        QueryParameter(description="Prefix of the address, first or last name."),
    ] = None,
) -> dict[str, Any]:
    """Search contacts by address or name prefix (case-insensitive), paged by id."""
    async with services.db.read() as conn:
        found = await search_contacts(conn, query=q, after_id=after, limit=limit)
    return page(found, limit=limit, key=lambda c: c.id, render=contact_to_dict)


@get(
    "/api/v1/contacts/{ref:str}",
    summary="One contact, by id or address",
    tags=[_TAG],
    **requires("contacts:read"),
)
async def read(services: Services, ref: FromPath[str]) -> dict[str, Any]:
    """One contact, by id or address."""
    async with services.db.read() as conn:
        contact = await get_contact(conn, await contact_ref(conn, ref))
    return contact_to_dict(contact)


@get(
    "/api/v1/contacts/{ref:str}/consent",
    summary="The consent proof of a contact: every decision, oldest first",
    tags=[_TAG],
    **requires("contacts:read"),
)
async def consent(services: Services, ref: FromPath[str]) -> dict[str, Any]:
    """The consent proof of a contact: every decision, oldest first."""
    async with services.db.read() as conn:
        contact_id = await contact_ref(conn, ref)
        await get_contact(conn, contact_id)
        records = await consent_history(conn, contact_id)
    return {"data": [consent_record_to_dict(r) for r in records], "next": None}


def _contact_data(body: ContactIn) -> ContactData:
    return ContactData(
        email=body.email,
        first_name=body.first_name,
        last_name=body.last_name,
        phone=body.phone,
        country=body.country,
        region=body.region,
        city=body.city,
        postal_code=body.postal_code,
        time_zone=body.time_zone,
        attributes=body.attributes,
        tags=tuple(body.tags) if body.tags is not None else None,
        source=body.source if body.source is not None else "api",
    )


@put(
    "/api/v1/contacts",
    summary="Create or update the contact with this address",
    tags=[_TAG],
    status_code=200,
    **requires("contacts:write"),
)
async def upsert(services: Services, data: JSONBody[ContactIn]) -> Response[dict[str, Any]]:
    """Create or update the contact with this address; 201 when it was created."""
    now = services.clock()
    contact_data = _contact_data(data)
    async with services.db.write() as conn:
        existing = await find_contact_id(conn, data.email)
        # upsert_contact refuses this too, but only after checking attributes, tags and
        # source; checking here first keeps "forgotten" the answer whatever else is wrong.
        if existing is None and await is_forgotten(conn, data.email):
            raise InvalidInput(FORGOTTEN_MESSAGE, field="email")
        contact_id = await upsert_contact(conn, contact_data, now=now)
        await _record_consent(conn, contact_id, data.consent or [], now=now)
        contact = await get_contact(conn, contact_id)
    return Response(contact_to_dict(contact), status_code=201 if existing is None else 200)


async def _record_consent(
    conn: AsyncConnection, contact_id: int, changes: list[ConsentIn], *, now: Any
) -> None:
    for index, item in enumerate(changes):
        change = ConsentChange(
            channel=item.channel,
            status=item.status,
            method=item.method,
            ip=item.ip,
            detail=item.detail,
        )
        try:
            await set_consent(conn, contact_id, change, now=now)
        except InvalidInput as exc:
            inner = exc.field or "consent"
            raise InvalidInput(str(exc), field=f"consent/{index}/{inner}") from exc


@delete(
    "/api/v1/contacts/{ref:str}",
    summary="Forget the person (GDPR erasure)",
    tags=[_TAG],
    **requires("contacts:write"),
)
async def erase(services: Services, ref: FromPath[str]) -> None:
    """Forget the person (GDPR erasure); a hashed suppression keeps them out."""
    async with services.db.read() as conn:
        contact = await get_contact(conn, await contact_ref(conn, ref))
    if not await forget(services.db, contact.email, now=services.clock()):
        raise NotFound(f"no contact {ref}")


@get(
    "/api/v1/contacts/{ref:str}/export",
    summary="Everything held about the person (GDPR access), as one JSON document",
    tags=[_TAG],
    **requires("contacts:read"),
)
async def export(services: Services, ref: FromPath[str]) -> dict[str, Any]:
    """Everything held about the person (GDPR access), as one JSON document."""
    async with services.db.read() as conn:
        contact = await get_contact(conn, await contact_ref(conn, ref))
    return await export_person(services.db, contact.email)


ROUTES: list[ControllerRouterHandler] = [search, read, consent, upsert, erase, export]
