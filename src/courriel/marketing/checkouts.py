"""Checkouts (carts) the shopper started, with their recovery link and "Started Checkout".

Owns writing checkouts by ``(integration_id, external_id)`` and their event.

Invariants:
- Every function runs inside the caller's write transaction.
- ``completed_at`` is set once (by the shop's own field here, or by the order that names
  the checkout in :func:`courriel.marketing.orders.upsert_order`) and never cleared.
- One "Started Checkout" event per checkout, however often it is updated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.marketing.commerce import (
    EventData,
    append_event,
    event_key,
    from_minor,
    upsert_statement,
)
from courriel.marketing.orders import LineData, items_summary
from courriel.marketing.products import product_infos
from courriel.storage.models.marketing import checkouts

__all__ = ["CheckoutData", "upsert_checkout"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckoutData:
    """A checkout (cart) the shopper started, with the link that resumes it."""

    integration_id: int | None
    external_id: str
    contact_id: int | None = None
    recovery_url: str | None = None
    currency: str | None = None
    total_minor: int | None = None
    lines: tuple[LineData, ...] = ()
    created_at: datetime
    completed_at: datetime | None = None


async def upsert_checkout(
    conn: AsyncConnection, data: CheckoutData, *, source: str, now: datetime
) -> int:
    """Create or update a checkout and write its "Started Checkout" event (once).

    Returns:
        The checkout's id.
    """
    lines = [
        {
            "product_id": line.external_product_id,
            "variant_id": line.external_variant_id,
            "title": line.title,
            "quantity": line.quantity,
            "price_minor": line.price_minor,
        }
        for line in data.lines
    ]
    values: dict[str, Any] = {
        "contact_id": data.contact_id,
        "recovery_url": data.recovery_url,
        "currency": data.currency,
        "total_minor": data.total_minor,
        "lines": lines,
        "updated_at": now,
    }
    if data.completed_at is not None:
        values["completed_at"] = data.completed_at
    stmt = (
        upsert_statement(conn, checkouts)
        .values(
            integration_id=data.integration_id,
            external_id=data.external_id,
            created_at=data.created_at,
            **values,
        )
        .on_conflict_do_update(index_elements=["integration_id", "external_id"], set_=values)
        .returning(checkouts.c.id)
    )
    checkout_id = int((await conn.execute(stmt)).scalar_one())
    currency = data.currency or ""
    products = await product_infos(
        conn,
        data.integration_id,
        [ln.external_product_id for ln in data.lines if ln.external_product_id],
    )
    await append_event(
        conn,
        EventData(
            name="Started Checkout",
            properties={
                "CheckoutId": data.external_id,
                "CheckoutURL": data.recovery_url,
                **items_summary(data.lines, currency, products),
            },
            occurred_at=data.created_at,
            value=None if data.total_minor is None else from_minor(data.total_minor, currency),
            source=source,
            unique_key=event_key("checkout", data.external_id, "started"),
            contact_id=data.contact_id,
        ),
    )
    return checkout_id
