"""Lists and Tracker in Chromium: create a list, add a member, count; add a tracker site."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.dashboard.conftest import Dashboard

from courriel.integrations.tracker import list_sites


async def test_create_a_list_add_a_member_and_count(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    page = await dashboard.page(browser, "marketer")
    await page.goto(f"{dashboard.url}/lists")
    await page.get_by_label("Name").fill("Weekly news")
    await page.get_by_label(re.compile(r"^Double opt-in")).check()
    await page.get_by_role("button", name="Create list").click()
    await page.wait_for_url(re.compile(r"/lists/\d+\?created=1"))
    await page.get_by_label("Add a member by email").fill("ann@shop.test")
    await page.get_by_role("button", name="Add member").click()
    await page.wait_for_url(re.compile(r"\?added=pending"))
    row = page.locator("table.members tbody tr", has_text="ann@shop.test")
    assert "pending" in await row.inner_text()
    assert [m.recipient for m in dashboard.mailer.sent] == ["ann@shop.test"]
    # The count is fetched by htmx when asked, in place of the button.
    await page.get_by_role("button", name="Count the members of Weekly news").click()
    await page.locator(".list-count", has_text="1 pending").wait_for()
    await shot(page, "lists")
    await page.set_viewport_size({"width": 375, "height": 800})
    assert await page.locator("main").evaluate("m => m.scrollWidth") <= 375


async def test_add_a_tracker_site_and_see_its_snippet(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    page = await dashboard.page(browser, "marketer")
    await page.goto(f"{dashboard.url}/tracker")
    await page.get_by_label(re.compile(r"^Name")).fill("myshop")
    await page.get_by_label(re.compile(r"^Allowed origins")).fill("https://shop.example")
    await page.get_by_role("button", name="Add site").click()
    await page.get_by_role("heading", name="Site myshop added").wait_for()
    [site] = await list_sites(dashboard.services.db)
    assert await page.locator("#site-key").inner_text() == site.public_key
    snippet = await page.locator("#site-snippet").inner_text()
    assert 'src="http://127.0.0.1/t/tracker.js"' in snippet  # http.public_url
    assert f'data-site="{site.public_key}"' in snippet
    await shot(page, "tracker")
    await page.set_viewport_size({"width": 375, "height": 800})
    assert await page.locator("main").evaluate("m => m.scrollWidth") <= 375
    await page.goto(f"{dashboard.url}/tracker")
    await page.get_by_text("Snippet for myshop").click()
    assert site.public_key in await page.locator("pre.snippet").inner_text()
    assert await page.locator("main").evaluate("m => m.scrollWidth") <= 375
