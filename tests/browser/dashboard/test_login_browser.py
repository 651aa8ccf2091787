"""Logging in and out of the dashboard in Chromium, and a role's refusal."""

from __future__ import annotations

from typing import Any

from tests.browser.dashboard.conftest import PASSWORD, Dashboard


async def test_log_in_and_out(browser: Any, dashboard: Dashboard, shot: Any) -> None:
    email = await dashboard.add_user("viewer")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(f"{dashboard.url}/settings/me")
    assert "/login" in page.url
    await shot(page, "login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill("wrong password here")
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_text("Wrong email or password.").wait_for()
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{dashboard.url}/settings/me")
    await page.get_by_text(email).first.wait_for()
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(f"{dashboard.url}/login")
    await page.goto(f"{dashboard.url}/settings/me")
    assert "/login" in page.url


async def test_a_viewer_is_refused_owner_pages(browser: Any, dashboard: Dashboard) -> None:
    page = await dashboard.page(browser, "viewer")
    response = await page.goto(f"{dashboard.url}/settings")
    assert response is not None and response.status in (403, 404)
