"""The Products and Orders pages: the shop's catalogue and orders as its webhooks stored them.

Routes (area "marketing", read only: every role reads; see docs/dashboard/shop.md):

- ``GET /shop/products``: search by title (case-insensitive, anywhere in the title), in id
  order, paged by cursor (``after``), never OFFSET; price, stock, status, categories, image.
- ``GET /shop/products/{id}``: one product with its variants, categories and shop link.
- ``GET /shop/orders``: newest first (``placed_at``, then id), an optional status filter,
  paged by cursor (``before``: the id of the last order shown), never OFFSET.
- ``GET /shop/orders/{id}``: one order with its lines, discounts, refunds and totals.

The shop is the source of truth (:mod:`courriel.marketing.products`,
:mod:`courriel.marketing.orders` write these rows from webhooks); nothing here writes.
The queries are read-only views of the same tables ``/api/v1/products`` and
``/api/v1/orders`` read, with the same joins and :func:`~courriel.marketing.products.categories_of`.

Invariants:
- Links taken from shop data (product and image URLs) are only rendered when they are
  http(s): a ``javascript:`` URL from a webhook never becomes a clickable link.
- An id that cannot exist (above 2^63 - 1) is a 404 page like any unknown id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.params import FromPath
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.marketing.orders import ORDER_STATUSES
from courriel.marketing.products import categories_of
from courriel.storage.models.marketing import (
    contacts,
    events,
    integrations,
    order_lines,
    orders,
    product_variants,
    products,
)
from courriel.web.app import Services
from courriel.web.dashboard.access import allow
from courriel.web.dashboard.ids import MAX_ID
from courriel.web.dashboard.render import page

__all__ = ["PAGE_SIZE", "ROUTES", "web_link"]

PAGE_SIZE = 50
MAX_REFUNDS = 200  # refund events read for one order (a shop refunds an order a few times)


def web_link(url: str | None) -> str | None:
    """``url`` when it is an http(s) address, else None (never a ``javascript:`` link)."""
    if url and url.strip().lower().startswith(("https://", "http://")):
        return url.strip()
    return None


def _cursor(value: str | None, field: str) -> int | None:
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise InvalidInput("must be an id (a whole number)", field=field)
    return int(value)


def _not_found(request: Request[Any, Any, Any], what: str, active: str) -> Response[str]:
    return page(request, "error.html", status=404, active=active, title="Not found", message=what)


def _bad_link(request: Request[Any, Any, Any], exc: InvalidInput, active: str) -> Response[str]:
    message = f"{exc.field}: {exc}" if exc.field else str(exc)
    return page(request, "error.html", status=422, active=active, title="Bad link", message=message)


# -- products ---------------------------------------------------------------------------


def _products_query() -> Select[Any]:
    return select(products, integrations.c.name.label("integration")).outerjoin(
        integrations, integrations.c.id == products.c.integration_id
    )


def _product(row: RowMapping, categories: list[str]) -> dict[str, Any]:
    item = dict(row)
    item.update(
        categories=categories,
        url=web_link(row["url"]),
        image_url=web_link(row["image_url"]),
    )
    return item


async def _find_products(
    conn: AsyncConnection, query: str, after: int
) -> tuple[list[dict[str, Any]], bool]:
    """A page of products (id order) whose title contains ``query``; and is there more."""
    statement = _products_query().where(products.c.id > after)
    if query:
        statement = statement.where(products.c.title.icontains(query, autoescape=True))
    statement = statement.order_by(products.c.id).limit(PAGE_SIZE + 1)
    rows = (await conn.execute(statement)).mappings().all()
    shown = rows[:PAGE_SIZE]
    categories = await categories_of(conn, [int(r["id"]) for r in shown])
    return [_product(r, categories[int(r["id"])]) for r in shown], len(rows) > PAGE_SIZE


@get("/shop/products", **allow("marketing"))
async def products_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The catalogue: title search, paged by id."""
    query = str(request.query_params.get("q") or "").strip()[:200]
    try:
        after = _cursor(request.query_params.get("after"), "after") or 0
    except InvalidInput as exc:
        return _bad_link(request, exc, "products")
    async with services.db.read() as conn:
        rows, more = await _find_products(conn, query, after)
    next_url = None
    if more:
        params = {"q": query} if query else {}
        next_url = "/shop/products?" + urlencode({**params, "after": rows[-1]["id"]})
    return page(
        request,
        "shop/products.html",
        active="products",
        title="Products",
        q=query,
        products=rows,
        next_url=next_url,
        paged=after > 0,
    )


@get("/shop/products/{product_id:int}", **allow("marketing"))
async def product_page(
    request: Request[Any, Any, Any], services: Services, product_id: FromPath[int]
) -> Response[str]:
    """One product with its variants and categories."""
    missing = f"There is no product {product_id}."
    if product_id > MAX_ID:
        return _not_found(request, missing, "products")
    async with services.db.read() as conn:
        statement = _products_query().where(products.c.id == product_id)
        row = (await conn.execute(statement)).mappings().first()
        if row is None:
            return _not_found(request, missing, "products")
        categories = await categories_of(conn, [product_id])
        variants = (
            await conn.execute(
                select(product_variants)
                .where(product_variants.c.product_id == product_id)
                .order_by(product_variants.c.id)
            )
        ).mappings()
        found = [dict(v) for v in variants]
    product = _product(row, categories[product_id])
    return page(
        request,
        "shop/product.html",
        active="products",
        title=product["title"],
        product=product,
        variants=found,
    )


# -- orders -----------------------------------------------------------------------------


def _orders_query() -> Select[Any]:
    return (
        select(
            orders,
            integrations.c.name.label("integration"),
            contacts.c.email.label("contact_email"),
        )
        .outerjoin(integrations, integrations.c.id == orders.c.integration_id)
        .outerjoin(contacts, contacts.c.id == orders.c.contact_id)
    )


async def _older_than(conn: AsyncConnection, before: int) -> Any:
    """The condition "placed before the order ``before``" (newest-first keyset paging).

    Raises:
        InvalidInput: (field "before") no order has this id.
    """
    placed = (
        await conn.execute(select(orders.c.placed_at).where(orders.c.id == before))
    ).scalar_one_or_none()
    if placed is None:
        raise InvalidInput("no such order: the list may have changed", field="before")
    return or_(
        orders.c.placed_at < placed,
        and_(orders.c.placed_at == placed, orders.c.id < before),
    )


async def _find_orders(
    conn: AsyncConnection, status: str | None, before: int | None
) -> tuple[Sequence[RowMapping], bool]:
    """A page of orders, newest first, of one status or all; and is there more."""
    statement = _orders_query()
    if status is not None:
        statement = statement.where(orders.c.status == status)
    if before is not None:
        statement = statement.where(await _older_than(conn, before))
    statement = statement.order_by(orders.c.placed_at.desc(), orders.c.id.desc())
    rows = (await conn.execute(statement.limit(PAGE_SIZE + 1))).mappings().all()
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _status(value: str | None) -> str | None:
    if not value:
        return None
    if value not in ORDER_STATUSES:
        raise InvalidInput(f"must be one of {', '.join(ORDER_STATUSES)}", field="status")
    return value


@get("/shop/orders", **allow("marketing"))
async def orders_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """The orders, newest first, with a status filter."""
    params = request.query_params
    try:
        status = _status(params.get("status"))
        before = _cursor(params.get("before"), "before")
        async with services.db.read() as conn:
            rows, more = await _find_orders(conn, status, before)
    except InvalidInput as exc:
        return _bad_link(request, exc, "orders")
    next_url = None
    if more:
        kept = {"status": status} if status else {}
        next_url = "/shop/orders?" + urlencode({**kept, "before": rows[-1]["id"]})
    return page(
        request,
        "shop/orders.html",
        active="orders",
        title="Orders",
        orders=rows,
        current=status or "",
        statuses=ORDER_STATUSES,
        next_url=next_url,
        paged=before is not None,
    )


async def _refunds(conn: AsyncConnection, order: RowMapping) -> list[dict[str, Any]]:
    """The order's refunds: its "Refunded Order" events (apply_refund writes one each).

    Read through ``ix_events_contact_name_time`` (or ``ix_events_name_time`` for an
    order without a contact) from the order's placing on, then matched on OrderId.
    """
    contact = order["contact_id"]
    statement = (
        select(events.c.occurred_at, events.c.value, events.c.properties)
        .where(
            events.c.name == "Refunded Order",
            events.c.contact_id == contact
            if contact is not None
            else events.c.contact_id.is_(None),
            events.c.occurred_at >= order["placed_at"],
        )
        .order_by(events.c.occurred_at, events.c.id)
        .limit(MAX_REFUNDS)
    )
    found = []
    for row in await conn.execute(statement):
        properties = row.properties or {}
        if properties.get("OrderId") != order["external_id"]:
            continue
        found.append(
            {
                "at": row.occurred_at,
                "amount": row.value,
                "reason": properties.get("Reason"),
                "id": properties.get("RefundId"),
            }
        )
    return found


def _line(line: RowMapping) -> dict[str, Any]:
    item = dict(line)
    item["total_minor"] = int(line["price_minor"]) * int(line["quantity"])
    return item


@get("/shop/orders/{order_id:int}", **allow("marketing"))
async def order_page(
    request: Request[Any, Any, Any], services: Services, order_id: FromPath[int]
) -> Response[str]:
    """One order with its lines, discounts, refunds and totals."""
    missing = f"There is no order {order_id}."
    if order_id > MAX_ID:
        return _not_found(request, missing, "orders")
    async with services.db.read() as conn:
        order = (
            (await conn.execute(_orders_query().where(orders.c.id == order_id))).mappings().first()
        )
        if order is None:
            return _not_found(request, missing, "orders")
        lines = (
            await conn.execute(
                select(order_lines)
                .where(order_lines.c.order_id == order_id)
                .order_by(order_lines.c.id)
            )
        ).mappings()
        found = [_line(line) for line in lines]
        refunds = await _refunds(conn, order)
    return page(
        request,
        "shop/order.html",
        active="orders",
        title=f"Order {order['number'] or order['external_id']}",
        order=order,
        lines=found,
        refunds=refunds,
        net_minor=int(order["total_minor"]) - int(order["refunded_minor"]),
    )


ROUTES = [products_page, product_page, orders_page, order_page]
