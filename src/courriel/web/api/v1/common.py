"""What every API v1 resource shares: cursor pages, query parameters, small helpers.

Paging (listmonk's lesson: never OFFSET): a list endpoint takes ``?after=<id>&limit=<n>``
and answers ``{"data": [...], "next": "<id>" | null}``; ``next`` is the id of the last item
when the page is full, so the client passes it back as ``after``. Items come in id order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.contacts import find_contact_id, get_contact, upsert_contact
from courriel.marketing.types import ContactData

__all__ = [
    "MAX_LIMIT",
    "After",
    "Limit",
    "aware",
    "contact_ref",
    "iso",
    "page",
]

MAX_LIMIT = 1000
T = TypeVar("T")

After = Annotated[
    int,
    QueryParameter(
        ge=0,
        description="Cursor: the `next` value of the previous page (0 or absent: from the start).",
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Page size (1-1000).")]


def page(
    items: Sequence[T], *, limit: int, key: Callable[[T], int], render: Callable[[T], Any]
) -> dict[str, Any]:
    """The ``{"data", "next"}`` envelope of one page.

    Args:
        items: the page, in ascending id order (at most ``limit`` items).
        limit: the page size asked for; a full page has a ``next`` cursor.
        key: the id of an item (the cursor).
        render: an item as JSON-able data.
    """
    cursor = str(key(items[-1])) if items and len(items) >= limit else None
    return {"data": [render(item) for item in items], "next": cursor}


def iso(value: datetime | None) -> str | None:
    """A time as RFC 3339 text (``2026-03-01T12:00:00+00:00``), or None."""
    return None if value is None else value.isoformat()


def aware(value: datetime, *, field: str) -> datetime:
    """Check that a time carries its UTC offset (RFC 3339 §5.6 ``time-offset``).

    Raises:
        InvalidInput: the time has no offset.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("a time needs its UTC offset, e.g. 2026-01-31T12:00:00Z", field=field)
    return value


async def contact_ref(conn: AsyncConnection, ref: str, *, field: str = "contact") -> int:
    """The id of the contact a path names: its id (digits) or its address.

    An id is returned as is (the caller's read raises NotFound when it does not exist).

    Raises:
        InvalidInput: ``ref`` is neither an id nor an address.
        NotFound: no contact has this address.
    """
    if ref.isascii() and ref.isdigit() and len(ref) <= 18:
        return int(ref)
    if "@" not in ref:
        raise InvalidInput("name a contact by its id or its email address", field=field)
    found = await find_contact_id(conn, ref)
    if found is None:
        raise NotFound("no contact has this address")
    return found


async def email_or_contact(
    conn: AsyncConnection,
    *,
    email: str | None,
    contact_id: int | None,
    source: str,
    now: datetime,
) -> int:
    """The contact a request names by exactly one of ``email`` and ``contact_id``.

    An unknown address makes a new contact (with ``source``); an existing id must exist.

    Raises:
        InvalidInput: both or neither given, or the address asked to be forgotten.
        NotFound: no contact with that id.
    """
    if (email is None) == (contact_id is None):
        raise InvalidInput("give either email or contact_id", field="email")
    if contact_id is not None:
        await get_contact(conn, contact_id)
        return contact_id
    assert email is not None
    # upsert_contact refuses an address erased on request (field "email").
    return await upsert_contact(conn, ContactData(email=email, source=source), now=now)
