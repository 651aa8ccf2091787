"""Shop data and the event stream: events, products, customers, orders, checkouts.

Owns: appending events (deduplicated on ``(source, unique_key)``), upserting the shop's
records by ``(integration_id, external_id)``, and keeping the order aggregates on
``contacts`` in step with the orders.

Invariants:
- Every function here runs inside the caller's write transaction (``conn``); none opens or
  commits one, so a webhook's records, events and receipt commit together or not at all.
- ``events`` are append-only: a replay of the same ``(source, unique_key)`` is a no-op and
  :func:`append_event` returns None for it.
- Money is in minor units with its currency beside it (see storage.models.marketing).
- ``contacts.order_count`` … ``last_order_at`` are recomputed by
  :func:`refresh_order_aggregates` in the transaction that changes an order, which also
  copies the contact's orders' contact, date and status to their lines.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.types import ContactData
from courriel.storage.models.marketing import contacts, customers, events, order_lines, orders

__all__ = [
    "CustomerData",
    "CustomerRef",
    "EventData",
    "append_event",
    "check_currency",
    "delete_customer",
    "event_key",
    "from_minor",
    "refresh_order_aggregates",
    "to_minor",
    "upsert_customer",
    "upsert_statement",
]

_NAME_MAX = 128
_SOURCE_MAX = 64
_KEY_MAX = 128
_ANON_MAX = 64

# ISO 4217 minor units of the currencies that do not have two (every other has 2).
_EXPONENTS: Mapping[str, int] = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}
_CURRENCY = re.compile(r"[A-Z]{3}")
# Plain decimal notation only: no exponent, no NaN, no digit separators.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class EventData:
    """One event to append (Klaviyo names: "Placed Order", "Viewed Product", …).

    ``source`` says who wrote it (``"shopify:NAME"``, ``"tracker"``, ``"api"``);
    ``unique_key`` (with ``source``) makes a replay a no-op, None means "never dedupe".
    ``value`` is the event's money value in major units, if any. An event belongs to a
    contact, or to an anonymous browser until it is identified, or to neither.
    """

    name: str
    properties: Mapping[str, Any]
    occurred_at: datetime
    value: float | None = None
    source: str
    unique_key: str | None = None
    contact_id: int | None = None
    anonymous_id: str | None = None


def upsert_statement(conn: AsyncConnection, table: Table) -> PgInsert | SqliteInsert:
    """An ``INSERT`` on ``table`` that accepts ``.on_conflict_do_*`` on either engine.

    Both SQLite (≥ 3.24) and PostgreSQL speak ``INSERT … ON CONFLICT``; only the
    SQLAlchemy construct differs. (Candidate for storage.db, which owns dialect quirks.)
    """
    if conn.dialect.name == "postgresql":
        return pg_insert(table)
    return sqlite_insert(table)


def _check_event(event: EventData) -> dict[str, Any]:
    limits = (
        ("name", event.name, _NAME_MAX),
        ("source", event.source, _SOURCE_MAX),
        ("unique_key", event.unique_key, _KEY_MAX),
        ("anonymous_id", event.anonymous_id, _ANON_MAX),
    )
    for field, value, limit in limits:
        if value is not None and not 0 < len(value) <= limit:
            raise InvalidInput(f"{field} must be 1 to {limit} characters", field=field)
    if event.value is not None and not math.isfinite(event.value):
        raise InvalidInput("value must be a finite number", field="value")
    try:
        # A round trip proves the properties are JSON (no sets, dates or NaN).
        properties = json.loads(json.dumps(dict(event.properties), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"properties are not JSON: {exc}", field="properties") from exc
    return {
        "contact_id": event.contact_id,
        "anonymous_id": event.anonymous_id,
        "name": event.name,
        "properties": properties,
        "value": event.value,
        "occurred_at": event.occurred_at,
        "source": event.source,
        "unique_key": event.unique_key,
    }


async def append_event(conn: AsyncConnection, event: EventData) -> int | None:
    """Append ``event`` inside the caller's transaction.

    Returns:
        The new event's id, or None when an event with the same ``(source, unique_key)``
        exists already (a replay: nothing is written).

    Raises:
        InvalidInput: a field is too long, ``value`` is not finite, or the properties are
            not JSON; ``field`` names it.
    """
    row = _check_event(event)
    stmt = (
        upsert_statement(conn, events)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["source", "unique_key"])
        .returning(events.c.id)
    )
    new_id = (await conn.execute(stmt)).scalar_one_or_none()
    return None if new_id is None else int(new_id)


def event_key(*parts: object) -> str:
    """A ``unique_key`` from the shop's ids: ``"order:1001:placed"``.

    Keys longer than the column (128) are replaced by their SHA-256 hex, which is
    just as stable, so a replay still finds them.
    """
    key = ":".join(str(part) for part in parts)
    if len(key) <= _KEY_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


# -- money ----------------------------------------------------------------------------


def check_currency(value: object, *, field: str = "currency") -> str:
    """The upper-case ISO 4217 code.

    Raises:
        InvalidInput: not three ASCII letters.
    """
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value.strip().upper()):
        raise InvalidInput(f"not an ISO 4217 currency code: {value!r}", field=field)
    return value.strip().upper()


def to_minor(amount: object, currency: str, *, field: str) -> int:
    """A decimal amount (``"12.50"``, ``12``) in the currency's minor units (1250).

    The amount is read as a decimal, never a float, so "0.1" is exactly 10 cents. Digits
    beyond the currency's exponent (a shop set to three decimals in USD) are rounded half
    to even. Floats are refused: JSON numbers with a fraction are not exact.

    Raises:
        InvalidInput: not a decimal string or integer, or not finite; ``field`` names it.
    """
    if isinstance(amount, bool) or not isinstance(amount, str | int):
        raise InvalidInput('must be a decimal string such as "12.50"', field=field)
    text = amount.strip() if isinstance(amount, str) else str(amount)
    if len(text) > 32 or not _DECIMAL.fullmatch(text):
        raise InvalidInput(f"not a decimal amount: {amount!r}", field=field)
    exponent = _EXPONENTS.get(currency, 2)
    minor = Decimal(text).scaleb(exponent).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    if abs(minor) >= 2**62:
        raise InvalidInput(f"amount out of range: {amount!r}", field=field)
    return int(minor)


def from_minor(minor: int, currency: str | None) -> float:
    """Minor units back to major units, for event values (``1250`` USD → 12.5)."""
    exponent = _EXPONENTS.get(currency or "", 2)
    return float(Decimal(minor).scaleb(-exponent))


# -- customers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerData:
    """A shop's customer record, linked to the contact of its email address."""

    integration_id: int
    external_id: str  # the shop's customer id
    contact: ContactData


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerRef:
    """The stored customer row and the contact it is linked to."""

    customer_id: int
    contact_id: int


async def upsert_customer(
    conn: AsyncConnection, data: CustomerData, *, now: datetime
) -> CustomerRef:
    """Create or update the shop's customer and its contact (``contacts.upsert_contact``).

    When the customer's address changed, the customer (and its orders) move to the
    contact of the new address, and both contacts' order aggregates are recomputed.

    Raises:
        InvalidInput: a malformed contact field, named in ``field``.
    """
    contact_id = await upsert_contact(conn, data.contact, now=now)
    found = (
        await conn.execute(
            select(customers.c.id, customers.c.contact_id).where(
                customers.c.integration_id == data.integration_id,
                customers.c.external_id == data.external_id,
            )
        )
    ).first()
    if found is None:
        stmt = (
            upsert_statement(conn, customers)
            .values(
                integration_id=data.integration_id,
                external_id=data.external_id,
                contact_id=contact_id,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=["integration_id", "external_id"],
                set_={"contact_id": contact_id, "updated_at": now},
            )
            .returning(customers.c.id)
        )
        return CustomerRef(
            customer_id=int((await conn.execute(stmt)).scalar_one()), contact_id=contact_id
        )
    customer_id, old_contact = int(found.id), int(found.contact_id)
    await conn.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(contact_id=contact_id, updated_at=now)
    )
    if old_contact != contact_id:
        await conn.execute(
            update(orders).where(orders.c.customer_id == customer_id).values(contact_id=contact_id)
        )
        await refresh_order_aggregates(conn, old_contact)
        await refresh_order_aggregates(conn, contact_id)
    return CustomerRef(customer_id=customer_id, contact_id=contact_id)


async def delete_customer(conn: AsyncConnection, integration_id: int, external_id: str) -> bool:
    """Forget the shop's customer record (the contact and its orders stay).

    Returns:
        False when the shop had no such customer.
    """
    result = await conn.execute(
        customers.delete().where(
            customers.c.integration_id == integration_id,
            customers.c.external_id == external_id,
        )
    )
    return bool(result.rowcount)


# -- order aggregates -----------------------------------------------------------------


async def refresh_order_aggregates(conn: AsyncConnection, contact_id: int) -> None:
    """Recompute the contact's order aggregates from its orders, in the caller's transaction.

    Orders that count are the ones not cancelled: ``order_count`` is their number,
    ``total_spent_minor`` the sum of ``total - refunded``, ``first_order_at`` /
    ``last_order_at`` their earliest and latest ``placed_at``. A contact that no longer
    exists is left alone.
    """
    # Lock the contact before counting: two orders of one contact written at once would
    # otherwise each count without the other and the last write would win (PostgreSQL;
    # SQLite's single writer serialises them anyway). FOR NO KEY UPDATE, not FOR UPDATE:
    # both transactions already hold KEY SHARE on the row (their order's foreign key),
    # which FOR UPDATE would wait on, deadlocking. Callers lock contacts in ascending id order.
    locked = await conn.execute(
        select(contacts.c.id).where(contacts.c.id == contact_id).with_for_update(key_share=True)
    )
    if locked.first() is None:
        return
    counted = orders.c.status != "cancelled"
    row = (
        await conn.execute(
            select(
                func.count(orders.c.id),
                func.coalesce(func.sum(orders.c.total_minor - orders.c.refunded_minor), 0),
                func.min(orders.c.placed_at),
                func.max(orders.c.placed_at),
            ).where(orders.c.contact_id == contact_id, counted)
        )
    ).one()
    count, spent, first, last = row
    await _copy_to_lines(conn, contact_id)
    await conn.execute(
        update(contacts)
        .where(contacts.c.id == contact_id)
        .values(
            order_count=int(count),
            total_spent_minor=int(spent),
            first_order_at=_aware(first),
            last_order_at=_aware(last),
        )
    )


async def _copy_to_lines(conn: AsyncConnection, contact_id: int) -> None:
    """Copy each of the contact's orders' contact, date and status to its lines.

    Lines are written with the copies (marketing/orders.py); this brings them in step after
    an order changes contact (a customer linked to another contact) or status (cancelled,
    refunded) without its lines being rewritten. Only lines that differ are written.
    """
    differs = or_(
        order_lines.c.contact_id.is_distinct_from(orders.c.contact_id),
        order_lines.c.placed_at != orders.c.placed_at,
        order_lines.c.status != orders.c.status,
    )
    await conn.execute(
        update(order_lines)
        .where(order_lines.c.order_id == orders.c.id, orders.c.contact_id == contact_id, differs)
        .values(
            contact_id=orders.c.contact_id, placed_at=orders.c.placed_at, status=orders.c.status
        )
    )


def _aware(value: Any) -> datetime | None:
    # min()/max() of a UTCDateTime column come back untyped on SQLite (text or naive).
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
