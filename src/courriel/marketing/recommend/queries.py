"""The SQL behind recommendations: the shop-wide facts, and each contact's signals.

Owns every query recommendations run. Two ways to read a contact's signals, kept apart on
purpose so that a property test can hold one against the other:
- :func:`page_signals`: a page of contacts in a fixed number of set-based queries
  (window functions partitioned by contact), whatever the page size;
- :func:`contact_signals`: one contact with plain ``ORDER BY … LIMIT`` queries.

Invariants: read-only; orders that count are those not cancelled nor refunded (units sold,
last order, co-purchases), while "bought" means any order of the contact; only the last
:data:`VIEW_HORIZON` "Viewed Product" events of a contact are read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, distinct, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.marketing.recommend.rank import Shop, Signals
from courriel.storage.models.marketing import (
    events,
    order_lines,
    orders,
    product_categories,
    product_variants,
    products,
)

__all__ = [
    "BEST_SELLER_DAYS",
    "VIEWED",
    "VIEW_HORIZON",
    "add_pairs",
    "contact_signals",
    "load_shop",
    "page_signals",
]

BEST_SELLER_DAYS = 30
VIEW_HORIZON = 50  # the most recent "Viewed Product" events read per contact
VIEWED = "Viewed Product"
# Klaviyo's "Viewed Product" properties naming the product: the shop's id, else the page.
_REF_KEYS = ("ProductID", "URL")
_DEAD = ("cancelled", "refunded")  # order statuses that sold nothing


# -- the shop ---------------------------------------------------------------------------


def _in_stock() -> Any:
    """Product in stock: its stock is untracked or positive, and when variants track
    stock, one of them has some."""
    variant = product_variants.c
    tracked = exists().where(variant.product_id == products.c.id, variant.stock.is_not(None))
    stocked = exists().where(variant.product_id == products.c.id, variant.stock > 0)
    return and_(
        or_(products.c.stock.is_(None), products.c.stock > 0),
        or_(~tracked, stocked),
    )


async def load_shop(conn: AsyncConnection, *, now: datetime) -> Shop:
    """The shop-wide facts as of ``now`` (three queries; co-purchases come later)."""
    categories: dict[int, list[str]] = {}
    rows = await conn.execute(
        select(product_categories.c.product_id, product_categories.c.category).order_by(
            product_categories.c.product_id, product_categories.c.category
        )
    )
    for product_id, category in rows:
        categories.setdefault(int(product_id), []).append(category)
    recommendable = and_(products.c.status == "active", _in_stock())
    rows = await conn.execute(
        select(
            products.c.id,
            products.c.external_id,
            products.c.url,
            products.c.title,
            products.c.image_url,
            products.c.price_minor,
            products.c.currency,
            case((recommendable, 1), else_=0).label("ok"),
        ).order_by(products.c.id.desc())
    )
    refs: dict[str, int] = {}
    available: dict[int, dict[str, Any]] = {}
    for row in rows:
        product_id = int(row.id)
        # Descending ids: the lowest id wins when two shops share an external id or URL.
        refs[row.external_id] = product_id
        if row.url:
            refs[row.url] = product_id
        if row.ok:
            available[product_id] = _product(row, categories.get(product_id))
    ranking = await _ranking(conn, now=now)
    return Shop(
        products=available,
        categories={p: tuple(c) for p, c in categories.items()},
        ranking=tuple(p for p in ranking if p in available),
        refs=refs,
    )


def _product(row: Any, categories: list[str] | None) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "title": row.title,
        "url": row.url,
        "image_url": row.image_url,
        "price_minor": None if row.price_minor is None else int(row.price_minor),
        "currency": row.currency,
        "category": categories[0] if categories else None,
    }


async def _ranking(conn: AsyncConnection, *, now: datetime) -> list[int]:
    """Sold products: by units of the last 30 days, then the rest by units of all time."""
    since = now - timedelta(days=BEST_SELLER_DAYS)
    line = order_lines.c
    recent = func.sum(case((line.placed_at >= since, line.quantity), else_=0))
    rows = await conn.execute(
        select(line.product_id, recent.label("recent"), func.sum(line.quantity).label("total"))
        .where(line.product_id.is_not(None), line.status.not_in(_DEAD))
        .group_by(line.product_id)
    )
    sold = [(int(r.product_id), int(r.recent or 0), int(r.total or 0)) for r in rows]
    sold.sort(key=lambda s: (-s[1], -s[2], s[0]))
    return [p for p, recent_units, total in sold if recent_units > 0 or total > 0]


async def add_pairs(conn: AsyncConnection, shop: Shop, product_ids: Iterable[int]) -> None:
    """Count co-purchases for the products not counted yet (one query, or none)."""
    missing = sorted({p for p in product_ids if p not in shop.pairs})
    if not missing:
        return
    a = order_lines.alias("a")
    b = order_lines.alias("b")
    rows = await conn.execute(
        select(a.c.product_id, b.c.product_id, func.count(distinct(a.c.order_id)))
        .select_from(
            a.join(b, and_(b.c.order_id == a.c.order_id, b.c.product_id != a.c.product_id))
        )
        .where(a.c.product_id.in_(missing), a.c.status.not_in(_DEAD))
        .group_by(a.c.product_id, b.c.product_id)
    )
    for product_id in missing:
        shop.pairs[product_id] = {}
    for product_id, other, count in rows:
        shop.pairs[int(product_id)][int(other)] = int(count)


# -- one contact's signals --------------------------------------------------------------


def _ref_columns() -> list[Any]:
    return [events.c.properties[key].as_string().label(key) for key in _REF_KEYS]


def _resolve(shop: Shop, rows: Iterable[Any]) -> tuple[int, ...]:
    """Product ids of view rows (most recent first), each once; unknown products skipped."""
    viewed: dict[int, None] = {}
    for row in rows:
        for key in _REF_KEYS:
            ref = _ref_text(getattr(row, key))
            if ref is not None and ref in shop.refs:
                viewed.setdefault(shop.refs[ref], None)
                break
    return tuple(viewed)


def _ref_text(value: object) -> str | None:
    """A property as text: SQLite's JSON_EXTRACT gives numbers back as numbers."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


async def contact_signals(
    conn: AsyncConnection, shop: Shop, contact_id: int, kinds: Collection[str]
) -> Signals:
    """One contact's signals, with plain per-contact queries."""
    bought = await conn.execute(
        select(order_lines.c.product_id)
        .distinct()
        .select_from(orders.join(order_lines, order_lines.c.order_id == orders.c.id))
        .where(orders.c.contact_id == contact_id, order_lines.c.product_id.is_not(None))
    )
    viewed: tuple[int, ...] = ()
    if {"recently_viewed", "same_category"} & set(kinds):
        rows = await conn.execute(
            select(*_ref_columns())
            .where(events.c.contact_id == contact_id, events.c.name == VIEWED)
            .order_by(events.c.occurred_at.desc(), events.c.id.desc())
            .limit(VIEW_HORIZON)
        )
        viewed = _resolve(shop, rows)
    last: tuple[int, ...] = ()
    if {"bought_together", "same_category"} & set(kinds):
        last = await _last_order(conn, contact_id)
    return Signals(
        bought=frozenset(int(p) for p in bought.scalars()), viewed=viewed, last_order=last
    )


async def _last_order(conn: AsyncConnection, contact_id: int) -> tuple[int, ...]:
    order_id = (
        await conn.execute(
            select(orders.c.id)
            .where(orders.c.contact_id == contact_id, orders.c.status.not_in(_DEAD))
            .order_by(orders.c.placed_at.desc(), orders.c.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if order_id is None:
        return ()
    rows = await conn.execute(
        select(order_lines.c.product_id)
        .distinct()
        .where(order_lines.c.order_id == order_id, order_lines.c.product_id.is_not(None))
    )
    return tuple(sorted(int(p) for p in rows.scalars()))


# -- a page of contacts -----------------------------------------------------------------


async def page_signals(
    conn: AsyncConnection, shop: Shop, contact_ids: Sequence[int], kinds: Collection[str]
) -> dict[int, Signals]:
    """Signals of every contact of a page in at most three queries, whatever its size."""
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    bought: dict[int, set[int]] = {c: set() for c in ids}
    rows = await conn.execute(
        select(orders.c.contact_id, order_lines.c.product_id)
        .distinct()
        .select_from(orders.join(order_lines, order_lines.c.order_id == orders.c.id))
        .where(orders.c.contact_id.in_(ids), order_lines.c.product_id.is_not(None))
    )
    for contact_id, product_id in rows:
        bought[int(contact_id)].add(int(product_id))
    viewed: dict[int, tuple[int, ...]] = {}
    if {"recently_viewed", "same_category"} & set(kinds):
        viewed = await _page_views(conn, shop, ids)
    last: dict[int, tuple[int, ...]] = {}
    if {"bought_together", "same_category"} & set(kinds):
        last = await _page_last_orders(conn, ids)
    return {
        c: Signals(
            bought=frozenset(bought[c]), viewed=viewed.get(c, ()), last_order=last.get(c, ())
        )
        for c in ids
    }


async def _page_views(
    conn: AsyncConnection, shop: Shop, ids: list[int]
) -> dict[int, tuple[int, ...]]:
    position = func.row_number().over(
        partition_by=events.c.contact_id,
        order_by=(events.c.occurred_at.desc(), events.c.id.desc()),
    )
    recent = (
        select(events.c.contact_id, *_ref_columns(), position.label("position"))
        .where(events.c.contact_id.in_(ids), events.c.name == VIEWED)
        .subquery()
    )
    rows = await conn.execute(
        select(recent.c.contact_id, *(recent.c[key] for key in _REF_KEYS))
        .where(recent.c.position <= VIEW_HORIZON)
        .order_by(recent.c.contact_id, recent.c.position)
    )
    per_contact: dict[int, list[Any]] = {}
    for row in rows:
        per_contact.setdefault(int(row.contact_id), []).append(row)
    return {c: _resolve(shop, views) for c, views in per_contact.items()}


async def _page_last_orders(conn: AsyncConnection, ids: list[int]) -> dict[int, tuple[int, ...]]:
    position = func.row_number().over(
        partition_by=orders.c.contact_id,
        order_by=(orders.c.placed_at.desc(), orders.c.id.desc()),
    )
    latest = (
        select(orders.c.id, orders.c.contact_id, position.label("position"))
        .where(orders.c.contact_id.in_(ids), orders.c.status.not_in(_DEAD))
        .subquery()
    )
    rows = await conn.execute(
        select(latest.c.contact_id, order_lines.c.product_id)
        .distinct()
        .select_from(latest.join(order_lines, order_lines.c.order_id == latest.c.id))
        .where(latest.c.position == 1, order_lines.c.product_id.is_not(None))
    )
    baskets: dict[int, set[int]] = {}
    for contact_id, product_id in rows:
        baskets.setdefault(int(contact_id), set()).add(int(product_id))
    return {c: tuple(sorted(b)) for c, b in baskets.items()}
