"""Contact editing, Products and Orders in Chromium: edit a contact (a name, a tag, an
unsubscribe) and see the profile and its consent history change; open a product and an
order from their lists."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from playwright.async_api import expect
from tests.browser.dashboard.conftest import Dashboard

from courriel.integrations.registry import add_integration
from courriel.marketing.consent import set_consent
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.orders import LineData, OrderData, upsert_order
from courriel.marketing.products import ProductData, VariantData, upsert_product
from courriel.marketing.types import ConsentChange, ContactData


async def _seed(dashboard: Dashboard) -> int:
    services = dashboard.services
    now = services.clock()
    shop = await add_integration(services.db, "shopify", "boutique", "s3cret-s3cret", now=now)
    async with services.db.write() as conn:
        ada = await upsert_contact(
            conn,
            ContactData(email="ada@shop.test", first_name="Ada", country="GB", tags=("vip",)),
            now=now,
        )
        change = ConsentChange(channel="email", status="subscribed", method="import")
        await set_consent(conn, ada, change, now=now - timedelta(days=1))
        await upsert_product(
            conn,
            ProductData(
                integration_id=shop.id,
                external_id="p1",
                title="Blue Mug",
                url="https://shop.test/mug",
                price_minor=1250,
                currency="EUR",
                categories=("Kitchen",),
                variants=(VariantData(external_id="v1", title="Large", sku="MUG-L", stock=4),),
            ),
            now=now,
        )
        await upsert_order(
            conn,
            OrderData(
                integration_id=shop.id,
                external_id="o1",
                number="#1001",
                contact_id=ada,
                currency="EUR",
                subtotal_minor=2500,
                total_minor=2500,
                status="paid",
                placed_at=now - timedelta(hours=2),
                lines=(
                    LineData(
                        external_product_id="p1", title="Blue Mug", quantity=2, price_minor=1250
                    ),
                ),
            ),
            source="shopify:boutique",
            now=now,
        )
    return ada


async def test_edit_a_contact_then_open_a_product_and_an_order(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    ada = await _seed(dashboard)
    page = await dashboard.page(browser, "marketer")
    await page.goto(f"{dashboard.url}/contacts/{ada}")
    await page.get_by_role("link", name="Edit", exact=True).click()
    await page.wait_for_url(re.compile(rf"/contacts/{ada}/edit$"))
    await page.get_by_label("First name").fill("Augusta Ada")
    await page.get_by_label("Add tags (comma-separated)").fill("countess")
    await page.get_by_label("Email consent").select_option("unsubscribed")
    await shot(page, "contact-edit")
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(re.compile(rf"/contacts/{ada}$"))
    await expect(page.locator("dl.fields")).to_contain_text("Augusta Ada")
    await expect(page.locator("span.badge", has_text="countess")).to_have_count(1)
    await expect(page.locator("span.badge", has_text="email: unsubscribed")).to_have_count(1)
    newest = page.locator("table tbody tr").first
    await expect(newest).to_contain_text("unsubscribed")
    await expect(newest).to_contain_text("dashboard")
    # A bad phone number: the form again, the field named, nothing saved.
    await page.goto(f"{dashboard.url}/contacts/{ada}/edit")
    await page.get_by_label(re.compile("^Phone")).fill("not a phone")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#phone-error")).to_be_visible()
    await expect(page.get_by_label(re.compile("^Phone"))).to_have_attribute("aria-invalid", "true")
    # Products and orders, from their lists.
    await page.goto(f"{dashboard.url}/shop/products")
    await page.get_by_role("link", name="Blue Mug").click()
    await expect(page.locator("table")).to_contain_text("MUG-L")
    await page.goto(f"{dashboard.url}/shop/orders")
    await expect(page.locator("table.orders tbody tr")).to_have_count(1)
    await shot(page, "orders")
    await page.get_by_role("link", name="#1001").click()
    await expect(page.get_by_role("heading", name="Order #1001")).to_be_visible()
    await expect(page.locator("dl.totals")).to_contain_text("25.00 EUR")
    await page.get_by_role("link", name="ada@shop.test").click()
    await page.wait_for_url(re.compile(rf"/contacts/{ada}$"))


async def test_the_forms_fit_a_phone(browser: Any, dashboard: Dashboard) -> None:
    ada = await _seed(dashboard)
    page = await dashboard.page(browser, "owner", width=375)
    for url in (f"/contacts/{ada}/edit", "/shop/orders", "/shop/products"):
        await page.goto(f"{dashboard.url}{url}")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (url, width)
