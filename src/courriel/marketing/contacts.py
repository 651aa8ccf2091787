"""Contacts: create-or-merge by address, read, search, delete.

Owns the ``contacts`` and ``contact_tags`` rows (consent columns belong to
:mod:`courriel.marketing.consent`, order aggregates to ``marketing.commerce``). Every
function here takes an open ``AsyncConnection`` and runs inside the caller's transaction,
so that a webhook can upsert a contact, its consent and its order in one commit.

Invariants:
- ``contacts.email`` is the normalised address (:mod:`courriel.marketing.normalise`); it
  is the contact's identity, unique in the table.
- An upsert never removes data: ``None`` fields are left alone, attributes merge key by key
  (at most 100 keys / 64 KiB after the merge), tags are only added. An empty string clears
  a text field. ``source`` keeps the first value ever given.
- ``updated_at`` changes only when a stored value changes.
- An address erased on request (a ``hash`` suppression, :func:`courriel.marketing.gdpr.forget_in`)
  is never inserted again: :func:`upsert_contact` is the one place every writer (API,
  webhooks, tracker, shop sync) goes through, so the check lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, exists, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import ForgottenAddress, InvalidInput, NotFound
from courriel.marketing.dbutil import upsert_insert
from courriel.marketing.normalise import (
    check_attributes,
    normalise_country,
    normalise_email,
    normalise_phone,
    normalise_tags,
    normalise_text,
    normalise_time_zone,
)
from courriel.marketing.suppression import is_forgotten
from courriel.marketing.types import CONSENT_STATUSES, Contact, ContactData
from courriel.storage.models.marketing import contact_tags, contacts, list_members

__all__ = [
    "FORGOTTEN_MESSAGE",
    "ContactFilter",
    "contact_to_dict",
    "delete_contact",
    "find_contact_id",
    "get_contact",
    "get_contacts",
    "normalise_fields",
    "only_empty",
    "search_contacts",
    "upsert_contact",
]

# Text columns and their lengths in the schema.
_TEXT_FIELDS: dict[str, int] = {
    "first_name": 255,
    "last_name": 255,
    "region": 128,
    "city": 128,
    "postal_code": 32,
}
MAX_PAGE = 1000
FORGOTTEN_MESSAGE = "this address asked to be forgotten and cannot be added again"


def normalise_fields(data: ContactData, *, stored_country: str | None = None) -> dict[str, Any]:
    """The column values ``data`` sets (absent keys: unchanged; None: cleared).

    Attributes, tags, email and source are not included (see :func:`upsert_contact`).

    Args:
        data: the caller's values.
        stored_country: the contact's country in the database, the default region for a
            phone number without ``+`` when ``data`` gives no country.

    Raises:
        InvalidInput: a field is malformed (the error names it).
    """
    values: dict[str, Any] = {}
    for name, length in _TEXT_FIELDS.items():
        raw = getattr(data, name)
        if raw is not None:
            values[name] = normalise_text(raw, field=name, max_length=length)
    if data.country is not None:
        values["country"] = normalise_country(data.country)
    if data.time_zone is not None:
        values["time_zone"] = normalise_time_zone(data.time_zone)
    if data.phone is not None:
        region = values.get("country", stored_country)
        values["phone"] = normalise_phone(data.phone, country=region)
    return values


def _source(data: ContactData) -> str | None:
    if data.source is None:
        return None
    return normalise_text(data.source, field="source", max_length=64)


async def find_contact_id(conn: AsyncConnection, email: str) -> int | None:
    """The id of the contact with this address (normalised first), or None.

    Raises:
        InvalidInput: ``email`` is not an address (field "email").
    """
    address = normalise_email(email)
    row = await conn.execute(select(contacts.c.id).where(contacts.c.email == address))
    found = row.scalar_one_or_none()
    return None if found is None else int(found)


async def upsert_contact(conn: AsyncConnection, data: ContactData, *, now: datetime) -> int:
    """Create the contact for ``data.email`` or merge ``data`` into it; returns its id.

    Args:
        conn: a connection inside the caller's write transaction.
        data: the values to store (None: leave unchanged).
        now: the time recorded in ``created_at`` / ``updated_at``.

    Raises:
        InvalidInput: a malformed field, named in ``field``; or the address has no contact
            and was erased on request (field "email", message :data:`FORGOTTEN_MESSAGE`).
    """
    email = normalise_email(data.email)
    attributes = check_attributes(data.attributes) if data.attributes is not None else None
    tags = normalise_tags(data.tags) if data.tags is not None else ()
    source = _source(data)
    row = await _load_row(conn, email)
    if row is None:
        if await is_forgotten(conn, email):
            raise ForgottenAddress(FORGOTTEN_MESSAGE, field="email")
        values = normalise_fields(data)
        contact_id = await _insert(
            conn, email, values=values, attributes=attributes, source=source, now=now
        )
        if contact_id is None:
            # Another transaction inserted the address between our SELECT and INSERT.
            row = await _load_row(conn, email)
    if row is not None:
        values = normalise_fields(data, stored_country=row["country"])
        contact_id = int(row["id"])
        changed = await _merge(
            conn, row, values=values, attributes=attributes, source=source, now=now
        )
        if await _add_tags(conn, contact_id, tags) and not changed:
            await conn.execute(
                update(contacts).where(contacts.c.id == contact_id).values(updated_at=now)
            )
        return contact_id
    assert contact_id is not None
    await _add_tags(conn, contact_id, tags)
    return contact_id


async def only_empty(
    conn: AsyncConnection, data: ContactData, *, columns: tuple[str, ...]
) -> ContactData:
    """``data`` reduced to what the stored contact lacks, for callers that may only fill in.

    Of ``columns``, those the contact has a value for are dropped (set to None: unchanged);
    attribute keys the contact has are dropped too. An unknown address keeps everything.

    Raises:
        InvalidInput: ``data.email`` is not an address (field "email").
    """
    row = await _load_row(conn, normalise_email(data.email))
    if row is None:
        return data
    kept: dict[str, Any] = {name: None for name in columns if row[name] not in (None, "")}
    if data.attributes is not None:
        stored = row["attributes"] or {}
        fresh = {key: value for key, value in data.attributes.items() if key not in stored}
        kept["attributes"] = fresh or None
    return replace(data, **kept)


async def _load_row(conn: AsyncConnection, email: str) -> RowMapping | None:
    result = await conn.execute(select(contacts).where(contacts.c.email == email))
    return result.mappings().first()


async def _insert(
    conn: AsyncConnection,
    email: str,
    *,
    values: dict[str, Any],
    attributes: dict[str, Any] | None,
    source: str | None,
    now: datetime,
) -> int | None:
    statement = (
        upsert_insert(conn, contacts)
        .values(
            email=email,
            attributes=attributes or {},
            source=source,
            email_status="never",
            sms_status="never",
            order_count=0,
            total_spent_minor=0,
            created_at=now,
            updated_at=now,
            **values,
        )
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(contacts.c.id)
    )
    found = (await conn.execute(statement)).scalar_one_or_none()
    return None if found is None else int(found)


async def _merge(
    conn: AsyncConnection,
    row: RowMapping,
    *,
    values: dict[str, Any],
    attributes: dict[str, Any] | None,
    source: str | None,
    now: datetime,
) -> bool:
    changes = {name: value for name, value in values.items() if row[name] != value}
    if attributes:
        merged = {**(row["attributes"] or {}), **attributes}
        if merged != row["attributes"]:
            changes["attributes"] = check_attributes(merged)
    if source is not None and row["source"] is None:
        changes["source"] = source
    if not changes:
        return False
    await conn.execute(
        update(contacts).where(contacts.c.id == row["id"]).values(updated_at=now, **changes)
    )
    return True


async def _add_tags(conn: AsyncConnection, contact_id: int, tags: tuple[str, ...]) -> bool:
    if not tags:
        return False
    statement = upsert_insert(conn, contact_tags).on_conflict_do_nothing(
        index_elements=["contact_id", "tag"]
    )
    existing = set(
        (
            await conn.execute(
                select(contact_tags.c.tag).where(contact_tags.c.contact_id == contact_id)
            )
        ).scalars()
    )
    new = [tag for tag in tags if tag not in existing]
    if not new:
        return False
    await conn.execute(statement, [{"contact_id": contact_id, "tag": tag} for tag in new])
    return True


async def get_contact(conn: AsyncConnection, contact_id: int) -> Contact:
    """The contact with this id, with its tags.

    Raises:
        NotFound: no such contact.
    """
    result = await conn.execute(select(contacts).where(contacts.c.id == contact_id))
    row = result.mappings().first()
    if row is None:
        raise NotFound(f"no contact {contact_id}")
    tags = await _tags_of(conn, [contact_id])
    return _to_contact(row, tags.get(contact_id, ()))


async def get_contacts(conn: AsyncConnection, contact_ids: Sequence[int]) -> list[Contact]:
    """The contacts with these ids and their tags, in the order asked, in two statements.

    An id with no contact (never made, or deleted since the caller read it) is left out.
    """
    ids = list(dict.fromkeys(contact_ids))
    if not ids:
        return []
    result = await conn.execute(select(contacts).where(contacts.c.id.in_(ids)))
    rows = {int(row["id"]): row for row in result.mappings()}
    tags = await _tags_of(conn, list(rows))
    return [_to_contact(rows[i], tags.get(i, ())) for i in ids if i in rows]


async def _tags_of(conn: AsyncConnection, ids: list[int]) -> dict[int, tuple[str, ...]]:
    if not ids:
        return {}
    result = await conn.execute(
        select(contact_tags.c.contact_id, contact_tags.c.tag)
        .where(contact_tags.c.contact_id.in_(ids))
        .order_by(contact_tags.c.contact_id, contact_tags.c.tag)
    )
    tags: dict[int, list[str]] = {}
    for contact_id, tag in result:
        tags.setdefault(int(contact_id), []).append(tag)
    return {key: tuple(value) for key, value in tags.items()}


def _to_contact(row: RowMapping, tags: tuple[str, ...]) -> Contact:
    return Contact(
        id=int(row["id"]),
        email=row["email"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        phone=row["phone"],
        country=row["country"],
        region=row["region"],
        city=row["city"],
        postal_code=row["postal_code"],
        time_zone=row["time_zone"],
        attributes=dict(row["attributes"] or {}),
        tags=tags,
        source=row["source"],
        email_status=row["email_status"],
        sms_status=row["sms_status"],
        order_count=int(row["order_count"]),
        total_spent_minor=int(row["total_spent_minor"]),
        first_order_at=row["first_order_at"],
        last_order_at=row["last_order_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def delete_contact(conn: AsyncConnection, contact_id: int) -> None:
    """Delete the contact; its tags, consent proof, memberships, orders and events follow.

    The foreign keys cascade (``ON DELETE CASCADE``). This is not a GDPR erasure: use
    :func:`courriel.marketing.gdpr.forget_in`, which also blocks the address from coming back.

    Raises:
        NotFound: no such contact.
    """
    result = await conn.execute(delete(contacts).where(contacts.c.id == contact_id))
    if result.rowcount == 0:
        raise NotFound(f"no contact {contact_id}")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactFilter:
    """Narrowing of a contact search (None: no condition); the dashboard's filters."""

    list_id: int | None = None  # subscribed or pending members of this list
    tag: str | None = None  # contacts with this tag (exact, as stored)
    email_status: str | None = None  # subscribed | unsubscribed | pending | never
    country: str | None = None  # ISO 3166-1 alpha-2


def _filtered(statement: Select[Any], where: ContactFilter) -> Select[Any]:
    if where.list_id is not None:
        statement = statement.where(
            exists().where(
                list_members.c.contact_id == contacts.c.id,
                list_members.c.list_id == where.list_id,
                list_members.c.status.in_(("subscribed", "pending")),
            )
        )
    if where.tag is not None:
        statement = statement.where(
            exists().where(
                contact_tags.c.contact_id == contacts.c.id, contact_tags.c.tag == where.tag
            )
        )
    if where.email_status is not None:
        statement = statement.where(contacts.c.email_status == where.email_status)
    if where.country is not None:
        statement = statement.where(contacts.c.country == where.country)
    return statement


def _check_filter(where: ContactFilter) -> ContactFilter:
    if where.email_status is not None and where.email_status not in CONSENT_STATUSES:
        raise InvalidInput(f"must be one of {', '.join(CONSENT_STATUSES)}", field="status")
    country = where.country
    if country is not None:
        country = normalise_country(country)
    tag = where.tag.strip() if where.tag is not None else None
    return replace(where, country=country, tag=tag or None)


def _search_query(
    query: str | None, after_id: int, limit: int, where: ContactFilter | None = None
) -> Select[Any]:
    statement = select(contacts).where(contacts.c.id > after_id)
    if query is not None and query.strip():
        pattern = _escape_like(query.strip().lower()) + "%"
        statement = statement.where(
            or_(
                contacts.c.email.like(pattern, escape="\\"),
                func.lower(contacts.c.first_name).like(pattern, escape="\\"),
                func.lower(contacts.c.last_name).like(pattern, escape="\\"),
            )
        )
    if where is not None:
        statement = _filtered(statement, where)
    return statement.order_by(contacts.c.id).limit(limit)


async def search_contacts(
    conn: AsyncConnection,
    *,
    query: str | None,
    after_id: int = 0,
    limit: int = 100,
    where: ContactFilter | None = None,
) -> list[Contact]:
    """Contacts whose address, first or last name starts with ``query`` (case-insensitive).

    Args:
        conn: an open connection.
        query: the prefix; None or blank lists every contact.
        after_id: the cursor: only contacts with a greater id (the last id of the previous page).
        limit: page size, 1 to 1000.
        where: more conditions (list, tag, consent status, country), all of which hold.

    Raises:
        InvalidInput: ``limit`` or ``after_id`` out of range, an unknown status
            (field "status") or country (field "country").
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE}", field="limit")
    if after_id < 0:
        raise InvalidInput("must not be negative", field="after_id")
    if where is not None:
        where = _check_filter(where)
    statement = _search_query(query, after_id, limit, where)
    rows = (await conn.execute(statement)).mappings().all()
    tags = await _tags_of(conn, [int(row["id"]) for row in rows])
    return [_to_contact(row, tags.get(int(row["id"]), ())) for row in rows]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def contact_to_dict(contact: Contact) -> dict[str, Any]:
    """The contact as a JSON-able dict (times in ISO 8601, money in minor units)."""
    return {
        "id": contact.id,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "phone": contact.phone,
        "country": contact.country,
        "region": contact.region,
        "city": contact.city,
        "postal_code": contact.postal_code,
        "time_zone": contact.time_zone,
        "attributes": dict(contact.attributes),
        "tags": list(contact.tags),
        "source": contact.source,
        "email_status": contact.email_status,
        "sms_status": contact.sms_status,
        "order_count": contact.order_count,
        "total_spent_minor": contact.total_spent_minor,
        "first_order_at": _iso(contact.first_order_at),
        "last_order_at": _iso(contact.last_order_at),
        "created_at": _iso(contact.created_at),
        "updated_at": _iso(contact.updated_at),
    }
