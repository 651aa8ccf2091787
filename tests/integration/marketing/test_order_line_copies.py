"""Order lines keep copies of their order's contact, date and status (read by "bought").

The segment compiler reads ``order_lines.contact_id / placed_at / status`` instead of
joining orders, so every way an order changes must leave its lines in step: written with
the order, a refund that changes the status, the customer moving to another contact, and
a status changed in place followed by the aggregates refresh (the shop deleting an order).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from courriel.marketing.commerce import (
    CustomerData,
    refresh_order_aggregates,
    upsert_customer,
)
from courriel.marketing.orders import LineData, OrderData, RefundData, apply_refund, upsert_order
from courriel.marketing.products import ProductData, upsert_product
from courriel.marketing.segments import count, parse_segment
from courriel.marketing.types import ContactData
from courriel.storage.db import Database
from courriel.storage.models.marketing import integrations, order_lines, orders

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PLACED = NOW - timedelta(days=10)
BOUGHT_MUG = parse_segment({"kind": "bought", "category": "mugs", "within_days": 30})


async def _shop(database: Database) -> tuple[int, int, int]:
    """A shop, a product of category "mugs", and a customer (ann): (shop, ann, customer)."""
    async with database.write() as conn:
        shop = (
            await conn.execute(
                insert(integrations)
                .values(kind="shopify", name="main", secret="s", created_at=NOW)
                .returning(integrations.c.id)
            )
        ).scalar_one()
        await upsert_product(
            conn,
            ProductData(integration_id=shop, external_id="p1", title="Mug", categories=("mugs",)),
            now=NOW,
        )
        ref = await upsert_customer(
            conn,
            CustomerData(
                integration_id=shop, external_id="c1", contact=ContactData(email="ann@example.com")
            ),
            now=NOW,
        )
    return shop, ref.contact_id, ref.customer_id


def _order(shop: int, contact: int, customer: int, **changes: object) -> OrderData:
    values: dict[str, object] = {
        "integration_id": shop,
        "external_id": "o1",
        "contact_id": contact,
        "customer_id": customer,
        "currency": "EUR",
        "total_minor": 1000,
        "status": "paid",
        "placed_at": PLACED,
        "updated_at": PLACED,
        "lines": (
            LineData(external_product_id="p1", title="Mug", quantity=1, price_minor=500),
            LineData(external_product_id="p1", title="Mug", quantity=1, price_minor=500),
        ),
    }
    return OrderData(**{**values, **changes})  # type: ignore[arg-type]


async def _copies(database: Database) -> set[tuple[int | None, datetime, str]]:
    async with database.read() as conn:
        rows = await conn.execute(
            select(order_lines.c.contact_id, order_lines.c.placed_at, order_lines.c.status)
        )
        return {(row.contact_id, row.placed_at, row.status) for row in rows}


async def test_lines_are_written_with_the_order_and_follow_its_changes(
    database: Database,
) -> None:
    shop, ann, customer = await _shop(database)
    async with database.write() as conn:
        await upsert_order(conn, _order(shop, ann, customer), source="shopify:main", now=NOW)
    assert await _copies(database) == {(ann, PLACED, "paid")}
    assert await count(database, BOUGHT_MUG, now=NOW) == 1

    # A later payload moves the order back in time and cancels it: lines are rewritten.
    earlier = PLACED - timedelta(days=1)
    async with database.write() as conn:
        await upsert_order(
            conn,
            _order(shop, ann, customer, placed_at=earlier, status="cancelled", updated_at=NOW),
            source="shopify:main",
            now=NOW,
        )
    assert await _copies(database) == {(ann, earlier, "cancelled")}
    assert await count(database, BOUGHT_MUG, now=NOW) == 0


async def test_a_refund_and_a_status_changed_in_place_reach_the_lines(
    database: Database,
) -> None:
    shop, ann, customer = await _shop(database)
    async with database.write() as conn:
        order_id = await upsert_order(
            conn, _order(shop, ann, customer), source="shopify:main", now=NOW
        )
        refund = RefundData(external_id="r1", amount_minor=1000, created_at=NOW)
        assert await apply_refund(conn, order_id, refund, source="shopify:main")
        await refresh_order_aggregates(conn, ann)
    assert await _copies(database) == {(ann, PLACED, "refunded")}
    assert await count(database, BOUGHT_MUG, now=NOW) == 1

    # What the shop's "order deleted" hook does: the status in place, then the refresh.
    async with database.write() as conn:
        await conn.execute(update(orders).where(orders.c.id == order_id).values(status="cancelled"))
        await refresh_order_aggregates(conn, ann)
    assert await _copies(database) == {(ann, PLACED, "cancelled")}
    assert await count(database, BOUGHT_MUG, now=NOW) == 0


async def test_lines_follow_the_customer_to_its_new_contact(database: Database) -> None:
    shop, ann, customer = await _shop(database)
    async with database.write() as conn:
        await upsert_order(conn, _order(shop, ann, customer), source="shopify:main", now=NOW)
        moved = await upsert_customer(
            conn,
            CustomerData(
                integration_id=shop, external_id="c1", contact=ContactData(email="bea@example.com")
            ),
            now=NOW,
        )
    assert moved.contact_id != ann
    assert await _copies(database) == {(moved.contact_id, PLACED, "paid")}
    not_bought = parse_segment({"kind": "bought", "category": "mugs", "negate": True})
    async with database.read() as conn:
        assert await count(database, BOUGHT_MUG, now=NOW) == 1
        assert (await conn.execute(select(orders.c.contact_id))).scalar_one() == moved.contact_id
    # ann never bought (the order is bea's now); bea did.
    assert await count(database, not_bought, now=NOW) == 1
