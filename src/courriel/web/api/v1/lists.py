"""``/api/v1/lists``: lists and their members, with double opt-in.

Subscribing through the API is a consent decision made on the person's behalf by the
caller (a shop's signup form): the proof records the given ``method`` (default "api") and
``ip``. On a double opt-in list the member is pending and a confirmation mail goes out
through the Mailer port after the transaction commits (never before: a rolled-back
subscription sends nothing).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.types import ControllerRouterHandler

from courriel.errors import NotFound
from courriel.marketing.lists import (
    OptIn,
    create_list,
    delete_list,
    get_list,
    list_lists,
    list_to_dict,
    members,
    send_outbox,
    subscribe,
    unsubscribe,
)
from courriel.marketing.types import OutgoingMail
from courriel.web.api.v1.common import After, Limit, contact_ref, email_or_contact, page
from courriel.web.app import Services
from courriel.web.auth import requires

__all__ = ["ROUTES", "ListIn", "MemberIn"]

_TAG = "lists"


class ListIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A list to create."""

    name: str
    double_opt_in: bool = False


class MemberIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A contact to subscribe, by address (created when unknown) or by id."""

    email: str | None = None
    contact_id: int | None = None
    method: str = "api"  # the consent proof's method: api, form, checkout…
    ip: str | None = None  # the person's IP when they asked, for the proof


@get(
    "/api/v1/lists",
    summary="Every list, by name, with its member counts (one page: lists are few)",
    tags=[_TAG],
    **requires("lists:read"),
)
async def index(services: Services) -> dict[str, Any]:
    """Every list, by name, with its member counts (one page: lists are few)."""
    async with services.db.read() as conn:
        found = await list_lists(conn)
    return {"data": [list_to_dict(item) for item in found], "next": None}


@post(
    "/api/v1/lists",
    summary="Create a list (409 when the name is taken)",
    tags=[_TAG],
    **requires("lists:write"),
)
async def create(services: Services, data: JSONBody[ListIn]) -> dict[str, Any]:
    """Create a list (409 when the name is taken)."""
    async with services.db.write() as conn:
        made = await create_list(
            conn, name=data.name, double_opt_in=data.double_opt_in, now=services.clock()
        )
    return list_to_dict(made)


@get(
    "/api/v1/lists/{list_id:int}",
    summary="One list with its member counts",
    tags=[_TAG],
    **requires("lists:read"),
)
async def read(services: Services, list_id: FromPath[int]) -> dict[str, Any]:
    """One list with its member counts."""
    async with services.db.read() as conn:
        return list_to_dict(await get_list(conn, list_id))


@delete(
    "/api/v1/lists/{list_id:int}",
    summary="Delete a list and its memberships",
    tags=[_TAG],
    **requires("lists:write"),
)
async def remove(services: Services, list_id: FromPath[int]) -> None:
    """Delete a list and its memberships; the contacts and their consent stay."""
    async with services.db.write() as conn:
        await delete_list(conn, list_id)


@get(
    "/api/v1/lists/{list_id:int}/members",
    summary="Members of a list, paged by contact id",
    tags=[_TAG],
    **requires("lists:read"),
)
async def list_members(
    services: Services,
    list_id: FromPath[int],
    after: After = 0,
    limit: Limit = 100,
    status: Annotated[
        Literal["subscribed", "pending", "unsubscribed"] | None,
        QueryParameter(description="Only members with this status."),
    ] = None,
) -> dict[str, Any]:
    """Members of a list, paged by contact id."""
    async with services.db.read() as conn:
        await get_list(conn, list_id)
        found = await members(conn, list_id, status=status, after_id=after, limit=limit)
    return page(
        found,
        limit=limit,
        key=lambda m: m.contact_id,
        render=lambda m: {
            "contact_id": m.contact_id,
            "email": m.email,
            "status": m.status,
            "added_at": m.added_at.isoformat(),
            "confirmed_at": m.confirmed_at.isoformat() if m.confirmed_at else None,
        },
    )


@post(
    "/api/v1/lists/{list_id:int}/members",
    summary="Subscribe a contact",
    tags=[_TAG],
    **requires("lists:write"),
)
async def add_member(
    services: Services, list_id: FromPath[int], data: JSONBody[MemberIn]
) -> Response[dict[str, Any]]:
    """Subscribe a contact; on a double opt-in list it is pending until the link is followed."""
    outbox: list[OutgoingMail] = []
    optin = OptIn(links=services.links, public_url=services.public_url, sender=services.mail_sender)
    async with services.db.write() as conn:
        await get_list(conn, list_id)
        contact_id = await email_or_contact(
            conn,
            email=data.email,
            contact_id=data.contact_id,
            source="api",
            now=services.clock(),
        )
        status = await subscribe(
            conn,
            list_id,
            contact_id,
            method=data.method,
            ip=data.ip,
            now=services.clock(),
            optin=optin,
            outbox=outbox,
        )
    await send_outbox(services.mailer, outbox)
    body = {"list_id": list_id, "contact_id": contact_id, "status": status}
    return Response(body, status_code=202 if status == "pending" else 200)


@delete(
    "/api/v1/lists/{list_id:int}/members/{ref:str}",
    summary="Unsubscribe a contact (by id or address) from the list",
    tags=[_TAG],
    **requires("lists:write"),
)
async def remove_member(services: Services, list_id: FromPath[int], ref: FromPath[str]) -> None:
    """Unsubscribe a contact (by id or address) from the list; its email consent stays."""
    async with services.db.write() as conn:
        await get_list(conn, list_id)
        contact_id = await contact_ref(conn, ref)
        if not await unsubscribe(conn, list_id, contact_id, now=services.clock()):
            raise NotFound("this contact is not a member of the list")


ROUTES: list[ControllerRouterHandler] = [
    index,
    create,
    read,
    remove,
    list_members,
    add_member,
    remove_member,
]
