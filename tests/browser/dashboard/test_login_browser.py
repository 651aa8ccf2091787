"""Logging in and out of the dashboard in Chromium, a role's refusal, and CSRF."""

from __future__ import annotations

from typing import Any

from tests.browser.dashboard.conftest import PASSWORD, Dashboard

from courriel.marketing.apikeys import list_keys


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


async def test_a_viewer_is_refused_owner_pages(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    page = await dashboard.page(browser, "viewer")
    response = await page.goto(f"{dashboard.url}/settings")
    assert response is not None and response.status == 403
    await page.get_by_text("your role cannot open this page").wait_for()
    await shot(page, "refused")


async def test_a_form_without_its_csrf_token_is_refused(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    """A form whose token was removed, or changed, is refused with the 403 page: nothing
    changes (the owner's API key is not made)."""
    page = await dashboard.page(browser, "owner")
    for how in ("remove", "change"):
        await page.goto(f"{dashboard.url}/settings")
        await page.get_by_label("New key name").fill("stolen-key")
        await page.get_by_label("every scope").check()
        await page.evaluate(
            """how => {
                const form = document.querySelector('form[action="/settings/keys"]');
                const field = form.querySelector('input[name=_csrf]');
                if (how === "remove") { field.remove(); } else { field.value = "forged"; }
            }""",
            how,
        )
        async with page.expect_navigation() as navigation:
            await page.get_by_role("button", name="Make key").click()
        response = await navigation.value
        assert response is not None and response.status == 403, how
        await page.get_by_text("did not come from this site").wait_for()
    await shot(page, "csrf-refused")
    assert await list_keys(dashboard.services.db) == []
