"""``/api/v1/orders``: shop orders as the webhooks stored them (read only), by contact.

Orders are written by the integrations (:mod:`courriel.marketing.orders`) and only read
here. Money is in minor units with the currency beside it; ``refunded_minor`` is what was
refunded so far. The queries are read-only views of the schema written for the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import FromPath, QueryParameter
from litestar.types import ControllerRouterHandler
from sqlalchemy import Select, select
from sqlalchemy.engine import RowMapping

from courriel.errors import NotFound
from courriel.storage.models.marketing import integrations, order_lines, orders
from courriel.web.api.v1.common import After, Limit, contact_ref, iso, page
from courriel.web.app import Services
from courriel.web.auth import requires

__all__ = ["ROUTES"]

_TAG = "orders"


def _query() -> Select[Any]:
    return select(orders, integrations.c.name.label("integration")).outerjoin(
        integrations, integrations.c.id == orders.c.integration_id
    )


def _order(row: RowMapping) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "integration": row["integration"],
        "external_id": row["external_id"],
        "number": row["number"],
        "contact_id": row["contact_id"],
        "status": row["status"],
        "financial_status": row["financial_status"],
        "fulfillment_status": row["fulfillment_status"],
        "currency": row["currency"],
        "subtotal_minor": row["subtotal_minor"],
        "discount_minor": row["discount_minor"],
        "shipping_minor": row["shipping_minor"],
        "tax_minor": row["tax_minor"],
        "total_minor": row["total_minor"],
        "refunded_minor": row["refunded_minor"],
        "discount_codes": list(row["discount_codes"] or []),
        "placed_at": iso(row["placed_at"]),
        "updated_at": iso(row["updated_at"]),
        "cancelled_at": iso(row["cancelled_at"]),
    }


@get(
    "/api/v1/orders",
    summary="Orders in id order, paged by cursor",
    tags=[_TAG],
    **requires("orders:read"),
)
async def index(
    services: Services,
    after: After = 0,
    limit: Limit = 100,
    contact: Annotated[
        str | None, QueryParameter(description="Only orders of this contact (id or address).")
    ] = None,
) -> dict[str, Any]:
    """Orders in id order, paged by cursor; optionally one contact's."""
    statement = _query().where(orders.c.id > after)
    async with services.db.read() as conn:
        if contact is not None:
            statement = statement.where(orders.c.contact_id == await contact_ref(conn, contact))
        rows = (await conn.execute(statement.order_by(orders.c.id).limit(limit))).mappings().all()
    return page(rows, limit=limit, key=lambda r: int(r["id"]), render=_order)


@get(
    "/api/v1/orders/{order_id:int}",
    summary="One order with its lines",
    tags=[_TAG],
    **requires("orders:read"),
)
async def read(services: Services, order_id: FromPath[int]) -> dict[str, Any]:
    """One order with its lines."""
    async with services.db.read() as conn:
        row = (await conn.execute(_query().where(orders.c.id == order_id))).mappings().first()
        if row is None:
            raise NotFound(f"no order {order_id}")
        lines = (
            await conn.execute(
                select(order_lines)
                .where(order_lines.c.order_id == order_id)
                .order_by(order_lines.c.id)
            )
        ).mappings()
        found = [
            {
                "product_id": line["product_id"],
                "external_product_id": line["external_product_id"],
                "external_variant_id": line["external_variant_id"],
                "title": line["title"],
                "sku": line["sku"],
                "quantity": line["quantity"],
                "price_minor": line["price_minor"],
            }
            for line in lines
        ]
    return {**_order(row), "lines": found}


ROUTES: list[ControllerRouterHandler] = [index, read]
