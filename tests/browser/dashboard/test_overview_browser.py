"""The Overview in Chromium: seeded numbers, three drawn charts, no console error, on a
laptop and on a phone-sized screen."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.browser.dashboard.conftest import Dashboard

from courriel.marketing import dailystats

CHARTS = ("chart-volume", "chart-revenue", "chart-health")


async def _seed(dashboard: Dashboard) -> None:
    now = datetime.now(UTC)
    async with dashboard.services.db.write() as conn:
        for back in range(30):
            at = now - timedelta(days=back)
            wave = 1 + math.sin(back / 4)
            sent = int(4000 + 2000 * wave)
            await dailystats.bump_in(conn, "sent", at, sent)
            await dailystats.bump_in(conn, "delivered", at, int(sent * 0.97))
            await dailystats.bump_in(conn, "opened", at, int(sent * 0.31))
            await dailystats.bump_in(conn, "clicked", at, int(sent * 0.05))
            await dailystats.bump_in(conn, "revenue_minor", at, int(150_000 * wave))
            await dailystats.bump_in(conn, "bounced", at, int(sent * 0.02))
            await dailystats.bump_in(conn, "complained", at, back % 7 + 2)


async def _drawn(page: Any) -> list[bool]:
    return [
        await page.evaluate(f"() => !!window.Chart.getChart(document.getElementById('{c}'))")
        for c in CHARTS
    ]


async def test_overview_draws_its_charts(browser: Any, dashboard: Dashboard, shot: Any) -> None:
    await _seed(dashboard)
    page = await dashboard.page(browser, "viewer")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{dashboard.url}/")
    await page.get_by_role("heading", name="Overview").wait_for()
    await page.wait_for_function("() => window.Chart !== undefined")
    assert await _drawn(page) == [True, True, True]
    assert await page.locator("#card-sent").inner_text() != "0"
    assert "below 0.3 %" in await page.locator(".cards").first.inner_text()
    await shot(page, "overview")
    await page.set_viewport_size({"width": 375, "height": 800})
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways on a phone ({width} px)"
    assert await _drawn(page) == [True, True, True]
    assert errors == []
