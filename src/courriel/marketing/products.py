"""The shop's catalogue: products, their variants and categories, and stock.

Owns writing products by ``(integration_id, external_id)`` and reading what order events
need about them (URL, image, categories).

Invariants:
- Every function runs inside the caller's write transaction.
- A product's variants and categories are replaced as a whole by each upsert (the shop's
  payload is the full list); variant rows are updated in place, so their ids stay.
- A deleted product is kept with status ``deleted`` so that order lines keep their link.
- ``products.stock`` is the sum of the tracked variants' stock (None: nothing tracked).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.marketing.commerce import upsert_statement
from courriel.storage.models.marketing import product_categories, product_variants, products

__all__ = [
    "ProductData",
    "ProductInfo",
    "ProductStatus",
    "VariantData",
    "categories_of",
    "delete_product",
    "product_infos",
    "upsert_product",
]

ProductStatus = Literal["active", "draft", "archived", "deleted"]
_STATUSES = ("active", "draft", "archived", "deleted")


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantData:
    """One variant of a product (size, colour…)."""

    external_id: str
    title: str
    sku: str | None = None
    price_minor: int | None = None
    stock: int | None = None  # None: the shop does not track it


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductData:
    """A product as the shop describes it (the full record, not a patch)."""

    integration_id: int | None
    external_id: str
    title: str
    url: str | None = None
    image_url: str | None = None
    price_minor: int | None = None
    currency: str | None = None
    stock: int | None = None  # used when no variant tracks stock
    status: ProductStatus = "active"
    categories: tuple[str, ...] = ()
    variants: tuple[VariantData, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductInfo:
    """What an order or checkout event says about a product."""

    id: int
    external_id: str
    url: str | None
    image_url: str | None
    categories: tuple[str, ...]


def _check(data: ProductData) -> None:
    if data.status not in _STATUSES:
        raise InvalidInput(f"unknown product status {data.status!r}", field="status")
    if not data.title.strip():
        raise InvalidInput("a product needs a title", field="title")
    for index, category in enumerate(data.categories):
        if not 0 < len(category) <= 255:
            raise InvalidInput("a category has 1 to 255 characters", field=f"categories/{index}")


def _stock(data: ProductData) -> int | None:
    tracked = [v.stock for v in data.variants if v.stock is not None]
    return sum(tracked) if tracked else data.stock


async def upsert_product(conn: AsyncConnection, data: ProductData, *, now: datetime) -> int:
    """Create or replace the product ``(integration_id, external_id)``; returns its id.

    Raises:
        InvalidInput: an unknown status, an empty title or a bad category.
    """
    _check(data)
    values = {
        "title": data.title.strip()[:512],
        "url": data.url,
        "image_url": data.image_url,
        "price_minor": data.price_minor,
        "currency": data.currency,
        "stock": _stock(data),
        "status": data.status,
        "updated_at": now,
    }
    product_id = await _product_id(conn, data.integration_id, data.external_id)
    if product_id is not None:
        await conn.execute(update(products).where(products.c.id == product_id).values(**values))
    elif data.integration_id is None:
        stmt = insert(products).values(external_id=data.external_id, created_at=now, **values)
        product_id = int((await conn.execute(stmt.returning(products.c.id))).scalar_one())
    else:
        # Two deliveries of a new product may race on PostgreSQL: the loser updates.
        stmt = (
            upsert_statement(conn, products)
            .values(
                integration_id=data.integration_id,
                external_id=data.external_id,
                created_at=now,
                **values,
            )
            .on_conflict_do_update(index_elements=["integration_id", "external_id"], set_=values)
        )
        product_id = int((await conn.execute(stmt.returning(products.c.id))).scalar_one())
    await _replace_categories(conn, product_id, data.categories)
    await _replace_variants(conn, product_id, data.variants)
    return product_id


async def _product_id(
    conn: AsyncConnection, integration_id: int | None, external_id: str
) -> int | None:
    integration = (
        products.c.integration_id.is_(None)
        if integration_id is None
        else products.c.integration_id == integration_id
    )
    found = (
        await conn.execute(
            select(products.c.id).where(integration, products.c.external_id == external_id)
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)


async def _replace_categories(
    conn: AsyncConnection, product_id: int, categories: Iterable[str]
) -> None:
    await conn.execute(
        delete(product_categories).where(product_categories.c.product_id == product_id)
    )
    rows = [{"product_id": product_id, "category": c} for c in sorted(set(categories))]
    if rows:
        await conn.execute(insert(product_categories), rows)


async def _replace_variants(
    conn: AsyncConnection, product_id: int, variants: tuple[VariantData, ...]
) -> None:
    keep = [v.external_id for v in variants]
    await conn.execute(
        delete(product_variants).where(
            product_variants.c.product_id == product_id,
            product_variants.c.external_id.not_in(keep),
        )
    )
    for variant in variants:
        values = {
            "title": variant.title[:512],
            "sku": variant.sku,
            "price_minor": variant.price_minor,
            "stock": variant.stock,
        }
        stmt = (
            upsert_statement(conn, product_variants)
            .values(product_id=product_id, external_id=variant.external_id, **values)
            .on_conflict_do_update(index_elements=["product_id", "external_id"], set_=values)
        )
        await conn.execute(stmt)


async def delete_product(
    conn: AsyncConnection, integration_id: int | None, external_id: str, *, now: datetime
) -> bool:
    """Mark the product deleted (order lines keep pointing at it); False if unknown."""
    product_id = await _product_id(conn, integration_id, external_id)
    if product_id is None:
        return False
    await conn.execute(
        update(products)
        .where(products.c.id == product_id)
        .values(status="deleted", stock=0, updated_at=now)
    )
    return True


async def product_infos(
    conn: AsyncConnection, integration_id: int | None, external_ids: Iterable[str]
) -> dict[str, ProductInfo]:
    """The stored products among ``external_ids`` of one shop, by external id."""
    wanted = sorted(set(external_ids))
    if not wanted or integration_id is None:
        return {}
    rows = (
        await conn.execute(
            select(products.c.id, products.c.external_id, products.c.url, products.c.image_url)
            .where(products.c.integration_id == integration_id)
            .where(products.c.external_id.in_(wanted))
        )
    ).all()
    categories = await categories_of(conn, [int(row.id) for row in rows])
    return {
        str(row.external_id): ProductInfo(
            id=int(row.id),
            external_id=str(row.external_id),
            url=row.url,
            image_url=row.image_url,
            categories=tuple(categories[int(row.id)]),
        )
        for row in rows
    }


async def categories_of(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, list[str]]:
    """The categories of each product (every id present, sorted names; [] when none)."""
    found: dict[int, list[str]] = {int(i): [] for i in ids}
    if found:
        rows = await conn.execute(
            select(product_categories.c.product_id, product_categories.c.category)
            .where(product_categories.c.product_id.in_(list(found)))
            .order_by(product_categories.c.category)
        )
        for product_id, category in rows.all():
            found[int(product_id)].append(str(category))
    return found
