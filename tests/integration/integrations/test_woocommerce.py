"""WooCommerce webhooks through the HTTP route, on both databases."""

from __future__ import annotations

from typing import Any

from courriel.storage.models.marketing import (
    contacts,
    customers,
    events,
    order_lines,
    orders,
    product_categories,
    products,
    webhook_receipts,
)

from .conftest import Hooks, fixture

EMAIL = "joao.silva@example.com"


def woo(name: str) -> dict[str, Any]:
    return fixture("woocommerce", name)


async def ok(response: Any, result: str = "applied") -> None:
    assert response.status_code == 200, response.text
    assert response.json()["status"] == result, response.text


async def test_creation_ping_is_200_and_changes_nothing(hooks: Hooks) -> None:
    response = await hooks.client.post(
        "/hooks/woocommerce/woo",
        content=b"webhook_id=12",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await ok(response, "ping")
    assert sum((await hooks.counts()).values()) == 0
    # Only the real ping shape passes unsigned.
    response = await hooks.client.post(
        "/hooks/woocommerce/woo",
        content=b"webhook_id=12&x=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 401
    response = await hooks.client.post("/hooks/woocommerce/nope", content=b"webhook_id=12")
    assert response.status_code == 404


async def test_customer_created_updated_deleted(hooks: Hooks) -> None:
    await ok(await hooks.woo("customer.created", woo("customer_created")))
    [row] = await hooks.rows(contacts, contacts.c.id)
    assert (row.email, row.first_name, row.last_name, row.source) == (
        EMAIL,
        "João",
        "Silva",
        "woocommerce:woo",
    )
    # A national number is read with the billing country.
    assert (row.phone, row.country, row.region, row.city) == (
        "+5511987654321",
        "BR",
        "SP",
        "São Paulo",
    )
    assert row.email_status == "never"  # WooCommerce says nothing about consent
    await ok(await hooks.woo("customer.updated", woo("customer_updated")))
    [row] = await hooks.rows(contacts, contacts.c.id)
    assert (row.last_name, row.city) == ("Silva Santos", "Campinas")
    [customer] = await hooks.rows(customers, customers.c.id)
    assert customer.external_id == "25"
    await ok(await hooks.woo("customer.deleted", woo("customer_deleted")))
    assert await hooks.rows(customers, customers.c.id) == []
    assert len(await hooks.rows(contacts, contacts.c.id)) == 1


async def test_order_flow_with_refund_and_delete(hooks: Hooks) -> None:
    await ok(await hooks.woo("product.created", woo("product_created")))
    await ok(await hooks.woo("customer.created", woo("customer_created")))
    await ok(await hooks.woo("order.created", woo("order_created")))
    [row] = await hooks.rows(contacts, contacts.c.id)
    assert (row.order_count, row.total_spent_minor) == (1, 6300)
    [order] = await hooks.rows(orders, orders.c.id)
    assert (order.status, order.currency, order.number) == ("paid", "BRL", "727")
    assert (order.subtotal_minor, order.discount_minor, order.shipping_minor) == (5800, 500, 1000)
    assert (order.total_minor, order.discount_codes) == (6300, ["summer5"])
    assert order.placed_at.isoformat() == "2026-11-23T12:00:00+00:00"
    lines = await hooks.rows(order_lines, order_lines.c.id)
    assert [(ln.title, ln.quantity, ln.price_minor) for ln in lines] == [
        ("Woo Single #1", 2, 1200),
        ("Ship Your Idea", 1, 3400),
    ]
    assert lines[0].product_id is not None

    await ok(await hooks.woo("order.updated", woo("order_updated")))
    [order] = await hooks.rows(orders, orders.c.id)
    assert (order.status, order.refunded_minor) == ("fulfilled", 1200)
    [row] = await hooks.rows(contacts, contacts.c.id)
    assert (row.order_count, row.total_spent_minor) == (1, 6300 - 1200)
    # The same update delivered again (a new delivery id): the refund is counted once.
    await ok(await hooks.woo("order.updated", woo("order_updated")))
    [row] = await hooks.rows(contacts, contacts.c.id)
    assert row.total_spent_minor == 5100
    names = [e.name for e in await hooks.rows(events, events.c.id)]
    assert names == [
        "Placed Order",
        "Ordered Product",
        "Ordered Product",
        "Fulfilled Order",
        "Refunded Order",
    ]
    placed = (await hooks.rows(events, events.c.id))[0]
    assert placed.properties["Categories"] == ["Music", "Singles"]
    assert placed.properties["DiscountCodes"] == ["summer5"]

    await ok(await hooks.woo("order.deleted", woo("order_deleted")))
    [row] = await hooks.rows(contacts, contacts.c.id)
    assert (row.order_count, row.total_spent_minor) == (0, 0)
    await ok(await hooks.woo("order.restored", woo("order_restored")))
    [row] = await hooks.rows(contacts, contacts.c.id)
    assert (row.order_count, row.total_spent_minor) == (1, 5100)


async def test_products(hooks: Hooks) -> None:
    await ok(await hooks.woo("product.created", woo("product_created")))
    [product] = await hooks.rows(products, products.c.id)
    assert (product.title, product.price_minor, product.stock, product.status) == (
        "Woo Single #1",
        1200,
        40,
        "active",
    )
    assert product.url == "https://shop.example.com/product/woo-single-1/"
    assert product.image_url.endswith("single-1.jpg")
    categories = await hooks.rows(product_categories, product_categories.c.category)
    assert [c.category for c in categories] == ["Music", "Singles"]
    await ok(await hooks.woo("order.created", woo("order_created")))
    await ok(await hooks.woo("product.updated", woo("product_updated")))
    [product] = await hooks.rows(products, products.c.id)
    assert (product.price_minor, product.currency, product.stock) == (1050, "BRL", 38)
    await ok(await hooks.woo("product.deleted", woo("product_deleted")))
    [product] = await hooks.rows(products, products.c.id)
    assert product.status == "deleted"
    await ok(await hooks.woo("product.restored", woo("product_restored")))
    [product] = await hooks.rows(products, products.c.id)
    assert product.status == "active"


async def test_refusals(hooks: Hooks) -> None:
    response = await hooks.woo("order.created", woo("order_created"), secret="wrong")
    assert response.status_code == 401
    assert sum((await hooks.counts()).values()) == 0
    response = await hooks.woo("coupon.created", {"id": 1}, delivery="w-1")
    assert response.status_code == 400
    response = await hooks.woo("order.created", b"{nope", delivery="w-2")
    assert (response.status_code, response.json()["detail"]) == (400, "malformed JSON")
    payload = woo("order_created")
    payload["status"] = "shipped-by-owl"
    response = await hooks.woo("order.created", payload, delivery="w-3")
    assert (response.status_code, response.json()["field"]) == (422, "status")
    payload = woo("order_created")
    payload["line_items"][0]["subtotal"] = "twelve"
    response = await hooks.woo("order.created", payload, delivery="w-4")
    assert (response.status_code, response.json()["field"]) == (422, "line_items/0/subtotal")
    payload = woo("order_created")
    payload["billing"]["email"] = "joao at example"
    response = await hooks.woo("order.created", payload, delivery="w-5")
    assert (response.status_code, response.json()["field"]) == (422, "billing/email")
    counts = await hooks.counts()
    assert sum(counts.values()) == counts["webhook_receipts"] == 5
    receipts = await hooks.rows(webhook_receipts, webhook_receipts.c.id)
    assert {r.status for r in receipts} == {"rejected"}


async def test_replay_of_a_delivery(hooks: Hooks) -> None:
    await ok(await hooks.woo("order.created", woo("order_created"), delivery="77"))
    before = await hooks.counts()
    await ok(await hooks.woo("order.created", woo("order_created"), delivery="77"), "duplicate")
    assert await hooks.counts() == before


async def test_guest_order_without_customer_id(hooks: Hooks) -> None:
    payload = woo("order_created")
    payload["customer_id"] = 0
    await ok(await hooks.woo("order.created", payload))
    assert await hooks.rows(customers, customers.c.id) == []
    [row] = await hooks.rows(contacts, contacts.c.id)
    assert (row.email, row.order_count) == (EMAIL, 1)
