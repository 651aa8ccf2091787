"""GDPR: export everything about a person, and erase it (right to be forgotten).

Owns the person-wide view across contacts, consent proof, lists, shop records, events,
browser ids and suppression entries.

Invariants:
- :func:`forget_in` leaves no row that names the person: the contact and everything that
  hangs off it (tags, consent proof, list memberships, shop customers, orders and their
  lines, checkouts, events — including anonymous events of the person's browser ids —,
  browser ids) and any ``address`` suppression of the address are deleted; what remains is
  one ``hash`` suppression (reason "forgotten"), which keeps imports and syncs from adding
  the address back and keeps campaigns from mailing it.
- The shop keeps its own copy of orders; ours are personal data and go.
- Mail still queued for the address (a pending double opt-in confirmation, a campaign
  message) is dropped in the same transaction: its ``queue_recipients`` rows go, and a
  ``queue_messages`` row that is left with nothing to do goes too (the rule of
  ``delivery.claims``, written here in SQL because marketing never imports delivery). The
  message body's blob is left for the blob store's owner to free (this module sees only
  the connection). Delivered and failed recipients are the mail server's log and stay.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.marketing.consent import consent_history, consent_record_to_dict
from courriel.marketing.contacts import contact_to_dict, find_contact_id, get_contact
from courriel.marketing.normalise import normalise_email
from courriel.marketing.suppression import address_hash, suppress
from courriel.storage.db import Database
from courriel.storage.models.marketing import (
    browser_ids,
    checkouts,
    consents,
    contact_tags,
    contacts,
    customers,
    events,
    list_members,
    lists,
    order_lines,
    orders,
    suppressions,
)
from courriel.storage.models.queue import queue_attempts, queue_messages, queue_recipients

__all__ = ["export_person", "export_person_in", "forget", "forget_in"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _rows(result: Any) -> list[dict[str, Any]]:
    return [{key: _jsonable(value) for key, value in row.items()} for row in result.mappings()]


async def export_person(db: Database, email: str) -> dict[str, Any]:
    """Everything stored about the person with this address, as a JSON-able dict.

    The dict always has ``email`` and ``suppressions``; ``contact`` is None (and the other
    keys are empty) when no contact has the address.

    Raises:
        InvalidInput: ``email`` is not an address.
    """
    async with db.read() as conn:
        return await export_person_in(conn, email)


async def export_person_in(conn: AsyncConnection, email: str) -> dict[str, Any]:
    """:func:`export_person` on an open connection (one consistent snapshot)."""
    address = normalise_email(email)
    person: dict[str, Any] = {
        "email": address,
        "contact": None,
        "consent": [],
        "lists": [],
        "customers": [],
        "orders": [],
        "checkouts": [],
        "events": [],
        "browser_ids": [],
        "suppressions": await _suppressions_of(conn, address),
    }
    contact_id = await find_contact_id(conn, address)
    if contact_id is None:
        return person
    person["contact"] = contact_to_dict(await get_contact(conn, contact_id))
    person["consent"] = [consent_record_to_dict(r) for r in await consent_history(conn, contact_id)]
    person["lists"] = _rows(
        await conn.execute(
            select(
                lists.c.name,
                list_members.c.status,
                list_members.c.added_at,
                list_members.c.confirmed_at,
            )
            .join(lists, lists.c.id == list_members.c.list_id)
            .where(list_members.c.contact_id == contact_id)
            .order_by(lists.c.name)
        )
    )
    person["customers"] = _rows(
        await conn.execute(
            select(customers).where(customers.c.contact_id == contact_id).order_by(customers.c.id)
        )
    )
    person["orders"] = await _orders_of(conn, contact_id)
    person["checkouts"] = _rows(
        await conn.execute(
            select(checkouts).where(checkouts.c.contact_id == contact_id).order_by(checkouts.c.id)
        )
    )
    ids = _rows(
        await conn.execute(
            select(browser_ids)
            .where(browser_ids.c.contact_id == contact_id)
            .order_by(browser_ids.c.first_seen)
        )
    )
    person["browser_ids"] = ids
    person["events"] = _rows(
        await conn.execute(
            select(events)
            .where(_events_of(contact_id, [row["anonymous_id"] for row in ids]))
            .order_by(events.c.occurred_at, events.c.id)
        )
    )
    return person


def _events_of(contact_id: int, anonymous_ids: list[str]) -> Any:
    if not anonymous_ids:
        return events.c.contact_id == contact_id
    return or_(events.c.contact_id == contact_id, events.c.anonymous_id.in_(anonymous_ids))


async def _suppressions_of(conn: AsyncConnection, address: str) -> list[dict[str, Any]]:
    digest = address_hash(address)
    result = await conn.execute(
        select(suppressions)
        .where(
            or_(
                (suppressions.c.kind == "address") & (suppressions.c.value == address),
                (suppressions.c.kind == "hash") & (suppressions.c.value == digest),
            )
        )
        .order_by(suppressions.c.id)
    )
    return _rows(result)


async def _orders_of(conn: AsyncConnection, contact_id: int) -> list[dict[str, Any]]:
    found = _rows(
        await conn.execute(
            select(orders).where(orders.c.contact_id == contact_id).order_by(orders.c.placed_at)
        )
    )
    if not found:
        return found
    lines = _rows(
        await conn.execute(
            select(order_lines)
            .where(order_lines.c.order_id.in_([order["id"] for order in found]))
            .order_by(order_lines.c.id)
        )
    )
    # Group once (lines stay in id order) rather than scan every line for every order.
    by_order: dict[Any, list[dict[str, Any]]] = {}
    for line in lines:
        by_order.setdefault(line["order_id"], []).append(line)
    for order in found:
        order["lines"] = by_order.get(order["id"], [])
    return found


async def forget(db: Database, email: str, *, now: datetime) -> bool:
    """:func:`forget_in` in its own write transaction.

    Raises:
        InvalidInput: ``email`` is not an address.
    """
    async with db.write() as conn:
        return await forget_in(conn, email, now=now)


async def forget_in(conn: AsyncConnection, email: str, *, now: datetime) -> bool:
    """Erase the person with this address and leave a hashed suppression behind.

    The suppression is added even when no contact has the address (a request to be
    forgotten is also a request never to be added).

    Args:
        conn: a connection inside the caller's write transaction.
        email: the person's address (normalised first).
        now: the time of the suppression entry.

    Returns:
        True when a contact was erased, False when the address was unknown.

    Raises:
        InvalidInput: ``email`` is not an address.
    """
    address = normalise_email(email)
    await conn.execute(
        delete(suppressions).where(
            suppressions.c.kind == "address", suppressions.c.value == address
        )
    )
    await suppress(conn, kind="hash", value=address_hash(address), reason="forgotten", now=now)
    await _drop_queued_mail(conn, address)
    contact_id = await find_contact_id(conn, address)
    if contact_id is None:
        return False
    anonymous = select(browser_ids.c.anonymous_id).where(browser_ids.c.contact_id == contact_id)
    anonymous_ids = list((await conn.execute(anonymous)).scalars())
    # Children first: the foreign keys cascade too, but explicit deletes do not depend on
    # the SQLite foreign_keys pragma and reach anonymous events, which have no contact_id.
    await conn.execute(delete(events).where(_events_of(contact_id, anonymous_ids)))
    await conn.execute(delete(browser_ids).where(browser_ids.c.contact_id == contact_id))
    person_customers = select(customers.c.id).where(customers.c.contact_id == contact_id)
    person_orders = or_(
        orders.c.contact_id == contact_id, orders.c.customer_id.in_(person_customers)
    )
    order_ids = select(orders.c.id).where(person_orders)
    await conn.execute(delete(order_lines).where(order_lines.c.order_id.in_(order_ids)))
    await conn.execute(delete(orders).where(person_orders))
    await conn.execute(delete(checkouts).where(checkouts.c.contact_id == contact_id))
    await conn.execute(delete(customers).where(customers.c.contact_id == contact_id))
    await conn.execute(delete(contact_tags).where(contact_tags.c.contact_id == contact_id))
    await conn.execute(delete(consents).where(consents.c.contact_id == contact_id))
    await conn.execute(delete(list_members).where(list_members.c.contact_id == contact_id))
    await conn.execute(delete(contacts).where(contacts.c.id == contact_id))
    return True


def _spellings(address: str) -> list[str]:
    """The lower-case spellings a queued recipient may have: A-label and U-label domain."""
    local, _, domain = address.rpartition("@")
    found = [address]
    try:
        unicode_domain = domain.encode("ascii").decode("idna")
    except UnicodeError:
        return found
    if unicode_domain != domain:
        found.append(f"{local}@{unicode_domain}")
    return found


async def _drop_queued_mail(conn: AsyncConnection, address: str) -> None:
    """Delete the queued recipients of ``address`` and the messages left with nothing to do."""
    mine = select(queue_recipients.c.id, queue_recipients.c.message_id).where(
        queue_recipients.c.status == "queued",
        func.lower(queue_recipients.c.recipient).in_(_spellings(address)),
    )
    rows = (await conn.execute(mine)).all()
    if not rows:
        return
    recipient_ids = [int(row.id) for row in rows]
    message_ids = sorted({int(row.message_id) for row in rows})
    await conn.execute(
        delete(queue_attempts).where(queue_attempts.c.recipient_id.in_(recipient_ids))
    )
    await conn.execute(delete(queue_recipients).where(queue_recipients.c.id.in_(recipient_ids)))
    # Nothing to do: no recipient queued or failed without its DSN (delivery.claims' rule).
    pending = exists().where(
        queue_recipients.c.message_id == queue_messages.c.id,
        or_(
            queue_recipients.c.status == "queued",
            and_(queue_recipients.c.status == "failed", queue_recipients.c.dsn_sent.is_(False)),
        ),
    )
    finished = select(queue_messages.c.id).where(queue_messages.c.id.in_(message_ids), ~pending)
    done = list((await conn.execute(finished)).scalars())
    if not done:
        return
    left = select(queue_recipients.c.id).where(queue_recipients.c.message_id.in_(done))
    await conn.execute(delete(queue_attempts).where(queue_attempts.c.recipient_id.in_(left)))
    await conn.execute(delete(queue_recipients).where(queue_recipients.c.message_id.in_(done)))
    await conn.execute(delete(queue_messages).where(queue_messages.c.id.in_(done)))
