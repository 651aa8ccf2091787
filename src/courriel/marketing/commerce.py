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
  :func:`refresh_order_aggregates` in the transaction that changes an order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.storage.models.marketing import events

__all__ = ["EventData", "append_event", "upsert_statement"]

_NAME_MAX = 128
_SOURCE_MAX = 64
_KEY_MAX = 128
_ANON_MAX = 64


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
