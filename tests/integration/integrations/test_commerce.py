"""Commerce services called directly: customers moving address, API orders, checkouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from courriel.errors import InvalidInput
from courriel.integrations.registry import add_integration
from courriel.marketing.checkouts import CheckoutData, upsert_checkout
from courriel.marketing.commerce import (
    CustomerData,
    refresh_order_aggregates,
    upsert_customer,
)
from courriel.marketing.contacts import get_contact, upsert_contact
from courriel.marketing.orders import (
    LineData,
    OrderData,
    RefundData,
    apply_refund,
    upsert_order,
)
from courriel.marketing.products import ProductData, VariantData, upsert_product
from courriel.marketing.types import ContactData
from courriel.storage.db import Database
from courriel.storage.models.marketing import checkouts, events, orders

from .conftest import NOW


def order(external_id: str, total: int, **overrides: object) -> OrderData:
    fields: dict[str, object] = {
        "integration_id": None,
        "external_id": external_id,
        "currency": "EUR",
        "total_minor": total,
        "status": "paid",
        "placed_at": NOW,
        "lines": (LineData(title="Mug", quantity=2, price_minor=total // 2),),
    }
    fields.update(overrides)
    return OrderData(**fields)  # type: ignore[arg-type]


async def test_customer_changing_address_moves_its_orders(database: Database) -> None:
    shop = await add_integration(database, "shopify", "s", "k", now=NOW)
    async with database.write() as conn:
        ref = await upsert_customer(
            conn,
            CustomerData(
                integration_id=shop.id, external_id="7", contact=ContactData(email="a@x.test")
            ),
            now=NOW,
        )
        await upsert_order(
            conn,
            order(
                "1",
                1000,
                integration_id=shop.id,
                contact_id=ref.contact_id,
                customer_id=ref.customer_id,
            ),
            source="shopify:s",
            now=NOW,
        )
        moved = await upsert_customer(
            conn,
            CustomerData(
                integration_id=shop.id, external_id="7", contact=ContactData(email="b@x.test")
            ),
            now=NOW,
        )
        assert moved.customer_id == ref.customer_id and moved.contact_id != ref.contact_id
        old = await get_contact(conn, ref.contact_id)
        new = await get_contact(conn, moved.contact_id)
    assert (old.order_count, old.total_spent_minor) == (0, 0)
    assert (new.order_count, new.total_spent_minor) == (1, 1000)


async def test_api_orders_without_integration(database: Database) -> None:
    async with database.write() as conn:
        contact_id = await upsert_contact(conn, ContactData(email="c@x.test"), now=NOW)
        first = await upsert_order(
            conn, order("A-1", 2000, contact_id=contact_id), source="api", now=NOW
        )
        again = await upsert_order(
            conn,
            order("A-1", 3000, contact_id=contact_id, placed_at=NOW + timedelta(days=1)),
            source="api",
            now=NOW,
        )
        assert first == again
        await upsert_order(
            conn,
            order("A-2", 500, contact_id=contact_id, placed_at=NOW - timedelta(days=3)),
            source="api",
            now=NOW,
        )
        assert await apply_refund(
            conn,
            first,
            RefundData(external_id="r1", amount_minor=700, created_at=NOW),
            source="api",
        )
        assert not await apply_refund(
            conn,
            first,
            RefundData(external_id="r1", amount_minor=700, created_at=NOW),
            source="api",
        )
        await refresh_order_aggregates(conn, contact_id)
        contact = await get_contact(conn, contact_id)
        rows = (await conn.execute(orders.select().order_by(orders.c.id))).all()
        names = [r.name for r in (await conn.execute(events.select())).all()]
    assert (contact.order_count, contact.total_spent_minor) == (2, 3000 - 700 + 500)
    assert contact.first_order_at == NOW - timedelta(days=3)
    assert contact.last_order_at == NOW + timedelta(days=1)
    assert [r.total_minor for r in rows] == [3000, 500]
    assert names.count("Placed Order") == 2 and names.count("Refunded Order") == 1


async def test_negative_quantity_and_bad_status_refused(database: Database) -> None:
    async with database.write() as conn:
        with pytest.raises(InvalidInput) as caught:
            await upsert_order(
                conn,
                order("X", 100, lines=(LineData(title="t", quantity=-1, price_minor=1),)),
                source="api",
                now=NOW,
            )
        assert caught.value.field == "lines/0/quantity"
        with pytest.raises(InvalidInput):
            await upsert_order(conn, order("X", 100, status="lost"), source="api", now=NOW)
        with pytest.raises(InvalidInput) as caught:
            await upsert_product(
                conn,
                ProductData(integration_id=None, external_id="p", title="P", categories=("",)),
                now=NOW,
            )
        assert caught.value.field == "categories/0"


async def test_checkout_completed_by_a_later_order(database: Database) -> None:
    shop = await add_integration(database, "shopify", "s", "k", now=NOW)
    async with database.write() as conn:
        await upsert_product(
            conn,
            ProductData(
                integration_id=shop.id,
                external_id="p1",
                title="Mug",
                categories=("Kitchen",),
                variants=(VariantData(external_id="v1", title="Blue", price_minor=900, stock=3),),
            ),
            now=NOW,
        )
        started = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
        data = CheckoutData(
            integration_id=shop.id,
            external_id="c1",
            recovery_url="https://shop.test/recover/c1",
            currency="EUR",
            total_minor=900,
            lines=(LineData(external_product_id="p1", title="Mug", quantity=1, price_minor=900),),
            created_at=started,
        )
        await upsert_checkout(conn, data, source="shopify:s", now=NOW)
        await upsert_checkout(conn, data, source="shopify:s", now=NOW)
        await upsert_order(
            conn,
            order("o1", 900, integration_id=shop.id, checkout_external_id="c1"),
            source="shopify:s",
            now=NOW,
        )
        [row] = (await conn.execute(checkouts.select())).all()
        started_events = (
            await conn.execute(events.select().where(events.c.name == "Started Checkout"))
        ).all()
    assert row.completed_at == NOW
    assert len(started_events) == 1
    assert started_events[0].properties["Categories"] == ["Kitchen"]
    assert started_events[0].properties["CheckoutURL"] == "https://shop.test/recover/c1"
