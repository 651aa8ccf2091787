"""Contacts in Chromium: live search, a profile, and a CSV import watched to the end."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import expect
from tests.browser.dashboard.conftest import Dashboard

from courriel.marketing.commerce import EventData, append_event
from courriel.marketing.contacts import find_contact_id
from courriel.marketing.csvio import import_contacts

PEOPLE = (
    "email,first_name,last_name,country,city,tags,email_consent,plan\r\n"
    "ada@shop.test,Ada,Lovelace,GB,London,vip;early,subscribed,gold\r\n"
    "alan@shop.test,Alan,Turing,GB,Manchester,early,unsubscribed,\r\n"
    "grace@shop.test,Grace,Hopper,US,Arlington,vip,subscribed,silver\r\n"
    "katherine@shop.test,Katherine,Johnson,US,Hampton,,pending,\r\n"
)


async def _seed(dashboard: Dashboard) -> None:
    db = dashboard.services.db
    now = dashboard.services.clock()
    await import_contacts(db, io.StringIO(PEOPLE), list_name="Newsletter", now=now)
    async with db.write() as conn:
        ada = await find_contact_id(conn, "ada@shop.test")
        for n, name in enumerate(("Viewed Product", "Added to Cart", "Started Checkout")):
            await append_event(
                conn,
                EventData(
                    name=name,
                    properties={},
                    occurred_at=now - timedelta(hours=3 - n),
                    source="tracker",
                    contact_id=ada,
                ),
            )


async def test_search_profile_and_import(
    browser: Any, dashboard: Dashboard, shot: Any, tmp_path: Path
) -> None:
    await _seed(dashboard)
    page = await dashboard.page(browser, "marketer")
    await page.goto(f"{dashboard.url}/contacts")
    rows = page.locator("#results tbody tr")
    await expect(rows).to_have_count(4)
    await shot(page, "contacts")
    # Live search: typing narrows the table without a page load (htmx, debounced).
    await page.get_by_label("Search (address or name starts with)").fill("hop")
    await expect(rows).to_have_count(1)
    assert "q=hop" in page.url
    await page.get_by_label("Search (address or name starts with)").fill("")
    await page.get_by_label("Tag").fill("vip")
    await expect(rows).to_have_count(2)
    await page.get_by_role("link", name="ada@shop.test").click()
    await page.get_by_role("heading", name="ada@shop.test").wait_for()
    await page.get_by_text("Started Checkout").wait_for()
    await shot(page, "contact-profile")
    # Import a small CSV and watch the progress page poll itself to "done".
    await page.goto(f"{dashboard.url}/contacts/import")
    csv_file = tmp_path / "new.csv"
    csv_file.write_text("email,first_name\r\nmary@shop.test,Mary\r\nbad,Bad\r\n", "utf-8")
    await page.get_by_label("CSV file (UTF-8)").set_input_files(str(csv_file))
    await page.get_by_label(re.compile("Add everyone to this list")).fill("Imported")
    await page.get_by_role("button", name="Import").click()
    await page.wait_for_url(re.compile(r"/contacts/import/[\w-]+$"))
    await page.locator("#import-job .badge", has_text="done").wait_for()
    assert await page.locator("#import-job td", has_text="email").count() == 1
    await shot(page, "contact-import")


async def test_phone_width_keeps_the_table_inside_the_page(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    await _seed(dashboard)
    page = await dashboard.page(browser, "viewer", width=375)
    await page.goto(f"{dashboard.url}/contacts")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    await shot(page, "contacts-phone")
