"""Orders and refunds, and the Klaviyo-compatible events they write.

Owns writing orders (with their lines) by ``(integration_id, external_id)``, applying
refunds, completing the checkout an order names, and the events "Placed Order", "Ordered
Product", "Fulfilled Order", "Cancelled Order" and "Refunded Order".

Invariants:
- Every function runs inside the caller's write transaction; the order, its lines, its
  events, the checkout it completes and the contact's aggregates change together.
- Each event's ``unique_key`` is derived from the shop's ids (:func:`event_key`), so a
  replayed or repeated webhook writes no second event.
- An order payload older than the stored order (by the shop's ``updated_at``) changes
  neither the order nor its lines; its refunds and events still count (once).
- An order's lines carry copies of its ``contact_id``, ``placed_at`` and ``status``
  (written here with the lines; a status changed by :func:`apply_refund` is copied by
  :func:`~courriel.marketing.commerce.refresh_order_aggregates`, which the caller runs).
- ``orders.refunded_minor`` only grows through :func:`apply_refund`, which adds a refund's
  amount only when its "Refunded Order" event is new: the events are the ledger of the
  refunds already counted, so ``orders/updated`` and ``refunds/create`` may both carry the
  same refund, in any order, and it is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.marketing.campaigns.attribution import (
    DEFAULT_WINDOW,
    attribute_order,
    refresh_revenue,
)
from courriel.marketing.commerce import (
    EventData,
    append_event,
    event_key,
    from_minor,
    refresh_order_aggregates,
    upsert_statement,
)
from courriel.marketing.products import ProductInfo, product_infos
from courriel.storage.models.marketing import checkouts, order_lines, orders

__all__ = [
    "ORDER_STATUSES",
    "LineData",
    "OrderData",
    "OrderStatus",
    "RefundData",
    "apply_refund",
    "find_order",
    "items_summary",
    "upsert_order",
]

OrderStatus = Literal["placed", "paid", "fulfilled", "cancelled", "refunded"]
ORDER_STATUSES: tuple[OrderStatus, ...] = ("placed", "paid", "fulfilled", "cancelled", "refunded")


@dataclass(frozen=True, slots=True, kw_only=True)
class LineData:
    """One line of an order or a checkout."""

    external_id: str | None = None  # the shop's line id, for the event key
    external_product_id: str | None = None
    external_variant_id: str | None = None
    title: str
    sku: str | None = None
    quantity: int
    price_minor: int  # unit price


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundData:
    """One refund of an order (counted once, whatever carries it)."""

    external_id: str
    amount_minor: int
    created_at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderData:
    """An order as the shop describes it (the full record, not a patch)."""

    integration_id: int | None
    external_id: str
    number: str | None = None  # the shop's order name, e.g. "#1001"
    contact_id: int | None = None
    customer_id: int | None = None
    currency: str
    subtotal_minor: int = 0
    discount_minor: int = 0
    shipping_minor: int = 0
    tax_minor: int = 0
    total_minor: int
    discount_codes: tuple[str, ...] = ()
    status: OrderStatus
    financial_status: str | None = None
    fulfillment_status: str | None = None
    placed_at: datetime
    updated_at: datetime | None = None  # the shop's last change; None: now
    cancelled_at: datetime | None = None
    lines: tuple[LineData, ...] = ()
    refunds: tuple[RefundData, ...] = ()
    checkout_external_id: str | None = None  # the checkout this order completes


def _check_order(data: OrderData) -> None:
    if data.status not in ORDER_STATUSES:
        raise InvalidInput(f"unknown order status {data.status!r}", field="status")
    for index, line in enumerate(data.lines):
        if line.quantity < 0:
            raise InvalidInput("a quantity is not negative", field=f"lines/{index}/quantity")


async def find_order(
    conn: AsyncConnection, integration_id: int | None, external_id: str
) -> int | None:
    """The id of the shop's order ``external_id``, or None."""
    row = (
        await conn.execute(
            select(orders.c.id).where(
                _same_shop(integration_id), orders.c.external_id == external_id
            )
        )
    ).first()
    return None if row is None else int(row.id)


def _same_shop(integration_id: int | None) -> Any:
    if integration_id is None:
        return orders.c.integration_id.is_(None)
    return orders.c.integration_id == integration_id


async def upsert_order(
    conn: AsyncConnection,
    data: OrderData,
    *,
    source: str,
    now: datetime,
    attribution_window: timedelta = DEFAULT_WINDOW,
) -> int:
    """Create or replace an order with its lines, refunds, events and aggregates.

    Args:
        conn: a connection inside the caller's write transaction.
        data: the order.
        source: the events' source, e.g. ``"shopify:NAME"``.
        now: the time of this change.
        attribution_window: ``tracking.attribution_window`` (revenue attribution to the
            campaign last clicked, :mod:`courriel.marketing.campaigns.attribution`).

    Returns:
        The order's id.

    Raises:
        InvalidInput: an unknown status or a negative quantity.
    """
    _check_order(data)
    order_id, old_contact, stale = await _write_order(conn, data, now)
    products = await product_infos(
        conn,
        data.integration_id,
        [ln.external_product_id for ln in data.lines if ln.external_product_id],
    )
    if not stale:
        await _replace_lines(conn, order_id, data, products)
    await _order_events(conn, data, products, source=source, now=now)
    for refund in data.refunds:
        await apply_refund(conn, order_id, refund, source=source)
    await _complete_checkout(conn, data)
    await attribute_order(conn, order_id, window=attribution_window, now=now)
    for contact_id in sorted(c for c in (old_contact, data.contact_id) if c is not None):
        await refresh_order_aggregates(conn, contact_id)
    return order_id


async def _write_order(
    conn: AsyncConnection, data: OrderData, now: datetime
) -> tuple[int, int | None, bool]:
    """Insert or update the order row: ``(id, previous contact, stale)``.

    A payload older than the stored order (the shop's ``updated_at``; webhooks may arrive
    out of order) is stale: the row and its lines are left as they are.
    """
    values = _order_values(data, now)
    existing = await _existing(conn, data)
    if existing is None:
        stmt = upsert_statement(conn, orders).values(
            integration_id=data.integration_id,
            external_id=data.external_id,
            refunded_minor=0,
            **values,
        )
        if data.integration_id is not None:
            # Shopify sends orders/create and orders/paid within milliseconds: on
            # PostgreSQL the second transaction waits here for the first, then updates.
            stmt = stmt.on_conflict_do_nothing(index_elements=["integration_id", "external_id"])
        new_id = (await conn.execute(stmt.returning(orders.c.id))).scalar_one_or_none()
        if new_id is not None:
            return int(new_id), None, False
        existing = await _existing(conn, data)
        assert existing is not None
    order_id, old_contact, stored_at = existing
    if data.updated_at is not None and stored_at is not None and data.updated_at < stored_at:
        return order_id, old_contact, True
    await conn.execute(update(orders).where(orders.c.id == order_id).values(**values))
    return order_id, old_contact, False


async def _existing(
    conn: AsyncConnection, data: OrderData
) -> tuple[int, int | None, datetime | None] | None:
    row = (
        await conn.execute(
            select(orders.c.id, orders.c.contact_id, orders.c.updated_at).where(
                _same_shop(data.integration_id), orders.c.external_id == data.external_id
            )
        )
    ).first()
    if row is None:
        return None
    contact_id = None if row.contact_id is None else int(row.contact_id)
    return int(row.id), contact_id, row.updated_at


def _order_values(data: OrderData, now: datetime) -> dict[str, Any]:
    return {
        "number": data.number,
        "contact_id": data.contact_id,
        "customer_id": data.customer_id,
        "currency": data.currency,
        "subtotal_minor": data.subtotal_minor,
        "discount_minor": data.discount_minor,
        "shipping_minor": data.shipping_minor,
        "tax_minor": data.tax_minor,
        "total_minor": data.total_minor,
        "discount_codes": list(data.discount_codes),
        "status": data.status,
        "financial_status": data.financial_status,
        "fulfillment_status": data.fulfillment_status,
        "placed_at": data.placed_at,
        "updated_at": data.updated_at or now,
        "cancelled_at": data.cancelled_at,
    }


async def _replace_lines(
    conn: AsyncConnection, order_id: int, data: OrderData, products: dict[str, ProductInfo]
) -> None:
    """Write the order's lines, each with a copy of the order's contact, date and status."""
    await conn.execute(delete(order_lines).where(order_lines.c.order_id == order_id))
    rows = [
        {
            "order_id": order_id,
            "contact_id": data.contact_id,
            "placed_at": data.placed_at,
            "status": data.status,
            "product_id": _product_id(line, products),
            "external_product_id": line.external_product_id,
            "external_variant_id": line.external_variant_id,
            "title": line.title[:512],
            "sku": line.sku,
            "quantity": line.quantity,
            "price_minor": line.price_minor,
        }
        for line in data.lines
    ]
    if rows:
        await conn.execute(insert(order_lines), rows)


def _product_id(line: LineData, products: dict[str, ProductInfo]) -> int | None:
    info = products.get(line.external_product_id or "")
    return None if info is None else info.id


def _item(line: LineData, currency: str, products: dict[str, ProductInfo]) -> dict[str, Any]:
    # Klaviyo's item shape (ProductID, SKU, ProductName, Quantity, ItemPrice, RowTotal …).
    info = products.get(line.external_product_id or "")
    return {
        "ProductID": line.external_product_id,
        "VariantID": line.external_variant_id,
        "SKU": line.sku,
        "ProductName": line.title,
        "Quantity": line.quantity,
        "ItemPrice": from_minor(line.price_minor, currency),
        "RowTotal": from_minor(line.price_minor * line.quantity, currency),
        "ProductURL": None if info is None else info.url,
        "ImageURL": None if info is None else info.image_url,
        "Categories": [] if info is None else list(info.categories),
    }


def items_summary(
    lines: tuple[LineData, ...], currency: str, products: dict[str, ProductInfo]
) -> dict[str, Any]:
    items = [_item(line, currency, products) for line in lines]
    categories = sorted({c for item in items for c in item["Categories"]})
    return {
        "ItemNames": [line.title for line in lines],
        "Categories": categories,
        "Items": items,
        "Currency": currency,
    }


async def _order_events(
    conn: AsyncConnection,
    data: OrderData,
    products: dict[str, ProductInfo],
    *,
    source: str,
    now: datetime,
) -> None:
    order = {"OrderId": data.external_id, "OrderNumber": data.number}
    value = from_minor(data.total_minor, data.currency)
    summary = items_summary(data.lines, data.currency, products)
    placed = {
        **order,
        **summary,
        "DiscountCodes": list(data.discount_codes),
        "DiscountValue": from_minor(data.discount_minor, data.currency),
    }

    async def emit(name: str, key: str, props: dict[str, Any], when: datetime, val: float) -> None:
        await append_event(
            conn,
            EventData(
                name=name,
                properties=props,
                occurred_at=when,
                value=val,
                source=source,
                unique_key=event_key("order", data.external_id, key),
                contact_id=data.contact_id,
            ),
        )

    await emit("Placed Order", "placed", placed, data.placed_at, value)
    for index, (line, item) in enumerate(zip(data.lines, summary["Items"], strict=True)):
        line_key = line.external_id if line.external_id is not None else f"#{index}"
        await emit(
            "Ordered Product",
            f"line:{line_key}",
            {**order, **item},
            data.placed_at,
            item["RowTotal"],
        )
    changed_at = data.updated_at or now
    if data.status == "fulfilled" or data.fulfillment_status == "fulfilled":
        await emit("Fulfilled Order", "fulfilled", placed, changed_at, value)
    if data.status == "cancelled":
        await emit("Cancelled Order", "cancelled", placed, data.cancelled_at or changed_at, value)


async def apply_refund(
    conn: AsyncConnection, order_id: int, refund: RefundData, *, source: str
) -> bool:
    """Count a refund on an order once: a "Refunded Order" event and ``refunded_minor``.

    When the refunds reach the order's total, a non-cancelled order becomes ``refunded``.
    The caller refreshes the contact's aggregates (``upsert_order`` does).

    Returns:
        False when this refund was counted already (nothing changes).
    """
    row = (
        await conn.execute(
            select(
                orders.c.external_id,
                orders.c.contact_id,
                orders.c.currency,
                orders.c.number,
                orders.c.total_minor,
                orders.c.refunded_minor,
                orders.c.status,
            ).where(orders.c.id == order_id)
        )
    ).one()
    event_id = await append_event(
        conn,
        EventData(
            name="Refunded Order",
            properties={
                "OrderId": row.external_id,
                "OrderNumber": row.number,
                "RefundId": refund.external_id,
                "Reason": refund.reason,
                "Currency": row.currency,
            },
            occurred_at=refund.created_at,
            value=from_minor(refund.amount_minor, row.currency),
            source=source,
            unique_key=event_key("order", row.external_id, "refund", refund.external_id),
            contact_id=row.contact_id,
        ),
    )
    if event_id is None:
        return False
    refunded = int(row.refunded_minor) + refund.amount_minor
    status = row.status
    if refunded >= int(row.total_minor) and status != "cancelled":
        status = "refunded"
    await conn.execute(
        update(orders).where(orders.c.id == order_id).values(refunded_minor=refunded, status=status)
    )
    await refresh_revenue(conn, order_id)
    return True


async def _complete_checkout(conn: AsyncConnection, data: OrderData) -> None:
    if data.checkout_external_id is None or data.integration_id is None:
        return
    await conn.execute(
        update(checkouts)
        .where(
            checkouts.c.integration_id == data.integration_id,
            checkouts.c.external_id == data.checkout_external_id,
            checkouts.c.completed_at.is_(None),
        )
        .values(completed_at=data.placed_at)
    )
