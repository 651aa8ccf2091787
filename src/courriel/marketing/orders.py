"""Orders, refunds and checkouts, and the Klaviyo-compatible events they write.

Owns writing orders (with their lines) and checkouts by ``(integration_id, external_id)``,
applying refunds, and the events "Placed Order", "Ordered Product", "Fulfilled Order",
"Cancelled Order", "Refunded Order" and "Started Checkout".

Invariants:
- Every function runs inside the caller's write transaction; the order, its lines, its
  events, the checkout it completes and the contact's aggregates change together.
- Each event's ``unique_key`` is derived from the shop's ids (:func:`event_key`), so a
  replayed or repeated webhook writes no second event.
- ``orders.refunded_minor`` only grows through :func:`apply_refund`, which adds a refund's
  amount only when its "Refunded Order" event is new: the events are the ledger of the
  refunds already counted, so ``orders/updated`` and ``refunds/create`` may both carry the
  same refund, in any order, and it is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
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
    "CheckoutData",
    "LineData",
    "OrderData",
    "OrderStatus",
    "RefundData",
    "apply_refund",
    "find_order",
    "upsert_checkout",
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
    conn: AsyncConnection, data: OrderData, *, source: str, now: datetime
) -> int:
    """Create or replace an order with its lines, refunds, events and aggregates.

    Args:
        conn: a connection inside the caller's write transaction.
        data: the order.
        source: the events' source, e.g. ``"shopify:NAME"``.
        now: the time of this change.

    Returns:
        The order's id.

    Raises:
        InvalidInput: an unknown status or a negative quantity.
    """
    _check_order(data)
    values = _order_values(data, now)
    existing = await _existing(conn, data)
    if existing is None:
        stmt = insert(orders).values(
            integration_id=data.integration_id,
            external_id=data.external_id,
            refunded_minor=0,
            **values,
        )
        order_id = int((await conn.execute(stmt.returning(orders.c.id))).scalar_one())
        old_contact = None
    else:
        order_id, old_contact = existing
        await conn.execute(update(orders).where(orders.c.id == order_id).values(**values))
    products = await product_infos(
        conn,
        data.integration_id,
        [ln.external_product_id for ln in data.lines if ln.external_product_id],
    )
    await _replace_lines(conn, order_id, data.lines, products)
    await _order_events(conn, data, products, source=source, now=now)
    for refund in data.refunds:
        await apply_refund(conn, order_id, refund, source=source)
    await _complete_checkout(conn, data)
    for contact_id in {old_contact, data.contact_id} - {None}:
        assert contact_id is not None
        await refresh_order_aggregates(conn, contact_id)
    return order_id


async def _existing(conn: AsyncConnection, data: OrderData) -> tuple[int, int | None] | None:
    row = (
        await conn.execute(
            select(orders.c.id, orders.c.contact_id).where(
                _same_shop(data.integration_id), orders.c.external_id == data.external_id
            )
        )
    ).first()
    if row is None:
        return None
    return int(row.id), None if row.contact_id is None else int(row.contact_id)


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
    conn: AsyncConnection,
    order_id: int,
    lines: tuple[LineData, ...],
    products: dict[str, ProductInfo],
) -> None:
    await conn.execute(delete(order_lines).where(order_lines.c.order_id == order_id))
    rows = [
        {
            "order_id": order_id,
            "product_id": _product_id(line, products),
            "external_product_id": line.external_product_id,
            "external_variant_id": line.external_variant_id,
            "title": line.title[:512],
            "sku": line.sku,
            "quantity": line.quantity,
            "price_minor": line.price_minor,
        }
        for line in lines
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


def _summary(
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
    summary = _summary(data.lines, data.currency, products)
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
                **_summary(data.lines, currency, products),
            },
            occurred_at=data.created_at,
            value=None if data.total_minor is None else from_minor(data.total_minor, currency),
            source=source,
            unique_key=event_key("checkout", data.external_id, "started"),
            contact_id=data.contact_id,
        ),
    )
    return checkout_id
