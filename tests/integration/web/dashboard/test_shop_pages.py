"""Dashboard Products and Orders pages: every role reads them, nothing writes; title
search, status filter, cursor paging (products by id, orders newest first), a product's
variants, an order's lines, discounts, refunds and totals; unknown ids are 404."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from tests.integration.web.dashboard.conftest import Users

from courriel.integrations.registry import add_integration
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.orders import LineData, OrderData, RefundData, upsert_order
from courriel.marketing.products import ProductData, VariantData, upsert_product
from courriel.marketing.types import ContactData
from courriel.web.app import WebServices
from courriel.web.dashboard import shop_pages

HUGE = str(2**63)
URLS = ("/shop/products", "/shop/orders")


async def _seed(services: WebServices) -> dict[str, int]:
    now = services.clock()
    ids: dict[str, int] = {}
    shop = await add_integration(services.db, "shopify", "boutique", "s3cret-s3cret", now=now)
    async with services.db.write() as conn:
        ids["mug"] = await upsert_product(
            conn,
            ProductData(
                integration_id=shop.id,
                external_id="p1",
                title="Blue 100% Mug",
                url="https://shop.test/mug",
                image_url="https://shop.test/mug.png",
                price_minor=1250,
                currency="EUR",
                categories=("Kitchen", "Gifts"),
                variants=(
                    VariantData(
                        external_id="v1", title="Small", sku="MUG-S", price_minor=1250, stock=7
                    ),
                    VariantData(
                        external_id="v2", title="Large", sku="MUG-L", price_minor=1550, stock=0
                    ),
                ),
            ),
            now=now,
        )
        ids["tee"] = await upsert_product(
            conn,
            ProductData(
                integration_id=shop.id,
                external_id="p2",
                title="Tee shirt",
                url="javascript:alert(1)",
                price_minor=2000,
                currency="EUR",
                stock=3,
            ),
            now=now,
        )
        ids["ada"] = await upsert_contact(conn, ContactData(email="ada@shop.test"), now=now)
        ids["old"] = await upsert_order(
            conn,
            OrderData(
                integration_id=shop.id,
                external_id="o1",
                number="#1001",
                contact_id=ids["ada"],
                currency="EUR",
                subtotal_minor=4050,
                discount_minor=500,
                shipping_minor=450,
                tax_minor=0,
                total_minor=4000,
                discount_codes=("WELCOME10",),
                status="paid",
                placed_at=now - timedelta(days=2),
                lines=(
                    LineData(
                        external_product_id="p1",
                        external_variant_id="v2",
                        title="Blue 100% Mug - Large",
                        sku="MUG-L",
                        quantity=1,
                        price_minor=1550,
                    ),
                    LineData(
                        external_product_id="p2", title="Tee shirt", quantity=2, price_minor=1250
                    ),
                ),
                refunds=(
                    RefundData(
                        external_id="r1",
                        amount_minor=1250,
                        created_at=now - timedelta(days=1),
                        reason="damaged",
                    ),
                ),
            ),
            source="shopify:boutique",
            now=now,
        )
        ids["new"] = await upsert_order(
            conn,
            OrderData(
                integration_id=shop.id,
                external_id="o2",
                number="#1002",
                currency="EUR",
                total_minor=2000,
                status="placed",
                placed_at=now - timedelta(hours=1),
                lines=(
                    LineData(
                        external_product_id="p2", title="Tee shirt", quantity=1, price_minor=2000
                    ),
                ),
            ),
            source="shopify:boutique",
            now=now,
        )
    return ids


def _rows(html: str, kind: str) -> list[str]:
    return re.findall(rf'<a href="/shop/{kind}/\d+">([^<]+)</a>', html)


async def test_every_role_reads_and_nobody_writes(users: Users) -> None:
    ids = await _seed(users.services)
    pages = (*URLS, f"/shop/products/{ids['mug']}", f"/shop/orders/{ids['old']}")
    for role in ("viewer", "marketer", "owner"):
        browser = await users.login(role)
        for url in pages:
            assert (await browser.get(url)).status_code == 200, (role, url)
        # Read-only pages: no POST route exists (405), with or without the CSRF token.
        for url in pages:
            assert (await browser.post(url, {})).status_code == 405
    assert (await browser.client.post(URLS[0], data={})).status_code in (403, 405)
    anonymous = users.client()
    for url in pages:
        response = await anonymous.get(url)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_products_search_by_title_and_page_by_cursor(
    users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _seed(users.services)
    browser = await users.login("viewer")
    listing = await browser.get("/shop/products")
    assert _rows(listing.text, "products") == ["Blue 100% Mug", "Tee shirt"]
    assert "12.50 EUR" in listing.text and 'src="https://shop.test/mug.png"' in listing.text
    assert "Kitchen" in listing.text and "Gifts" in listing.text
    for query, found in (
        ("MUG", ["Blue 100% Mug"]),
        ("100%", ["Blue 100% Mug"]),
        ("_", []),
        ("shirt", ["Tee shirt"]),
    ):
        response = await browser.get("/shop/products", params={"q": query})
        assert _rows(response.text, "products") == found, query
    monkeypatch.setattr(shop_pages, "PAGE_SIZE", 1)
    first = await browser.get("/shop/products")
    assert _rows(first.text, "products") == ["Blue 100% Mug"]
    assert f'href="/shop/products?after={ids["mug"]}"' in first.text
    second = await browser.get("/shop/products", params={"after": ids["mug"]})
    assert _rows(second.text, "products") == ["Tee shirt"]
    assert "?after=" not in second.text
    assert (await browser.get("/shop/products", params={"after": "x"})).status_code == 422


async def test_a_product_shows_variants_categories_and_only_web_links(users: Users) -> None:
    ids = await _seed(users.services)
    browser = await users.login("viewer")
    mug = await browser.get(f"/shop/products/{ids['mug']}")
    assert "MUG-S" in mug.text and "MUG-L" in mug.text and "15.50 EUR" in mug.text
    assert 'href="https://shop.test/mug"' in mug.text and "Kitchen" in mug.text
    tee = await browser.get(f"/shop/products/{ids['tee']}")
    assert tee.status_code == 200
    assert "javascript:" not in tee.text


async def test_orders_newest_first_filtered_and_paged(
    users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _seed(users.services)
    browser = await users.login("viewer")
    listing = await browser.get("/shop/orders")
    assert _rows(listing.text, "orders") == ["#1002", "#1001"]
    assert f'<a href="/contacts/{ids["ada"]}">ada@shop.test</a>' in listing.text
    assert "guest" in listing.text
    paid = await browser.get("/shop/orders", params={"status": "paid"})
    assert _rows(paid.text, "orders") == ["#1001"]
    assert (await browser.get("/shop/orders", params={"status": "lost"})).status_code == 422
    monkeypatch.setattr(shop_pages, "PAGE_SIZE", 1)
    first = await browser.get("/shop/orders")
    assert _rows(first.text, "orders") == ["#1002"]
    assert f'href="/shop/orders?before={ids["new"]}"' in first.text
    second = await browser.get("/shop/orders", params={"before": ids["new"]})
    assert _rows(second.text, "orders") == ["#1001"]
    assert "before=" not in second.text.split("Back to the newest")[-1]
    for bad in ("x", "999", HUGE):
        assert (await browser.get("/shop/orders", params={"before": bad})).status_code == 422


async def test_an_order_shows_lines_discounts_refunds_and_totals(users: Users) -> None:
    ids = await _seed(users.services)
    browser = await users.login("viewer")
    response = await browser.get(f"/shop/orders/{ids['old']}")
    text = response.text
    assert "Order #1001" in text
    assert f'<a href="/shop/products/{ids["mug"]}">Blue 100% Mug - Large</a>' in text
    assert "25.00 EUR" in text  # 2 × 12.50
    assert "WELCOME10" in text and "−5.00 EUR" in text and "4.50 EUR" in text
    assert "damaged" in text and "12.50 EUR" in text
    assert "27.50 EUR" in text  # net: 40.00 − 12.50
    assert f'href="/contacts/{ids["ada"]}"' in text


async def test_unknown_ids_are_404(users: Users) -> None:
    await _seed(users.services)
    browser = await users.login("viewer")
    for kind in ("products", "orders"):
        for missing in ("999", HUGE, str(2**64 + 1)):
            response = await browser.get(f"/shop/{kind}/{missing}")
            # The router refuses ids over 2^63 - 1 itself (its 404 page); others are ours.
            assert response.status_code == 404, (kind, missing)
            assert "no such page" in response.text or "There is no" in response.text
