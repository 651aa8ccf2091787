"""``/api/v1/products``: the shop catalogue as the webhooks stored it (read only).

The shop is the source of truth for products; they are written by the integrations
(:mod:`courriel.marketing.products`) and only read here. Money is in minor units with
the ISO 4217 currency beside it. The queries are read-only views of the schema written
for the API (no business rule lives here).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import FromPath, QueryParameter
from litestar.types import ControllerRouterHandler
from sqlalchemy import Select, select
from sqlalchemy.engine import RowMapping

from courriel.errors import NotFound
from courriel.marketing.products import categories_of
from courriel.storage.models.marketing import (
    integrations,
    product_variants,
    products,
)
from courriel.web.api.v1.common import After, Limit, iso, page
from courriel.web.app import Services
from courriel.web.auth import requires

__all__ = ["ROUTES"]

_TAG = "products"


def _query() -> Select[Any]:
    return select(products, integrations.c.name.label("integration")).outerjoin(
        integrations, integrations.c.id == products.c.integration_id
    )


def _product(row: RowMapping, categories: list[str]) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "integration": row["integration"],
        "external_id": row["external_id"],
        "title": row["title"],
        "url": row["url"],
        "image_url": row["image_url"],
        "price_minor": row["price_minor"],
        "currency": row["currency"],
        "stock": row["stock"],
        "status": row["status"],
        "categories": categories,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


@get(
    "/api/v1/products",
    summary="Products in id order, paged by cursor",
    tags=[_TAG],
    **requires("products:read"),
)
async def index(
    services: Services,
    after: After = 0,
    limit: Limit = 100,
    status: Annotated[
        str | None, QueryParameter(description="Only products with this status (active, …).")
    ] = None,
) -> dict[str, Any]:
    """Products in id order, paged by cursor."""
    statement = _query().where(products.c.id > after)
    if status is not None:
        statement = statement.where(products.c.status == status)
    async with services.db.read() as conn:
        rows = (await conn.execute(statement.order_by(products.c.id).limit(limit))).mappings().all()
        categories = await categories_of(conn, [int(r["id"]) for r in rows])
    return page(
        rows,
        limit=limit,
        key=lambda r: int(r["id"]),
        render=lambda r: _product(r, categories[int(r["id"])]),
    )


@get(
    "/api/v1/products/{product_id:int}",
    summary="One product with its categories and variants",
    tags=[_TAG],
    **requires("products:read"),
)
async def read(services: Services, product_id: FromPath[int]) -> dict[str, Any]:
    """One product with its categories and variants."""
    async with services.db.read() as conn:
        row = (await conn.execute(_query().where(products.c.id == product_id))).mappings().first()
        if row is None:
            raise NotFound(f"no product {product_id}")
        categories = await categories_of(conn, [product_id])
        variants = (
            await conn.execute(
                select(product_variants)
                .where(product_variants.c.product_id == product_id)
                .order_by(product_variants.c.id)
            )
        ).mappings()
        found = [
            {
                "id": int(v["id"]),
                "external_id": v["external_id"],
                "title": v["title"],
                "sku": v["sku"],
                "price_minor": v["price_minor"],
                "stock": v["stock"],
            }
            for v in variants
        ]
    return {**_product(row, categories[product_id]), "variants": found}


ROUTES: list[ControllerRouterHandler] = [index, read]
