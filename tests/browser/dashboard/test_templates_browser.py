"""The email template editor in Chromium: drag the product block in, save, preview on a phone."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tests.browser.dashboard.conftest import Dashboard

from courriel.marketing.templates.compile import compile_template
from courriel.marketing.templates.service import get_template_by_name

LOOP = '{% for p in recommendations("best_sellers", 3) %}'


async def drag_into(page: Any, block: Any, canvas: Any) -> None:
    """Drag ``block`` over the canvas frame and drop it there, as a hand would.

    GrapesJS's sorter needs a series of dragover events across the canvas frame; a single
    ``drag_to`` (even with ``steps``) delivers the drop before the sorter placed it.
    """
    src, dst = await block.bounding_box(), await canvas.bounding_box()
    assert src and dst
    await page.mouse.move(src["x"] + src["width"] / 2, src["y"] + src["height"] / 2)
    await page.mouse.down()
    for i in range(1, 11):
        await page.mouse.move(dst["x"] + dst["width"] / 2, dst["y"] + 40 * i, steps=3)
    await page.mouse.up()


async def test_drag_the_product_block_save_and_preview(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    page = await dashboard.page(browser, "marketer")
    # The editor must work offline: no request leaves this server, no CSP violation.
    outside: list[str] = []
    errors: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if urlsplit(r.url).hostname != "127.0.0.1" else None,
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Security Policy" in m.text else None)
    await page.goto(f"{dashboard.url}/templates/new")
    await page.get_by_label("Name").fill("spring-sale")
    block = page.locator(".gjs-block", has_text="Recommended products")
    canvas = page.locator("#gjs iframe.gjs-frame")
    body = page.frame_locator("#gjs iframe.gjs-frame").locator("body")
    await body.get_by_text("Write your message here.").wait_for()
    await drag_into(page, block, canvas)
    await body.get_by_text("Picked for you").wait_for()
    await shot(page, "template-editor")
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(re.compile(r"/templates/\d+/edit\?saved=1$"))
    await page.get_by_text("Saved.").wait_for()
    assert not outside, outside
    assert not errors, errors

    async with dashboard.services.db.read() as conn:
        stored = await get_template_by_name(conn, "spring-sale")
    assert stored.kind == "mjml"
    assert LOOP in stored.source
    assert "Write your message here." in stored.source
    assert "{% for p in recommendations(" in compile_template("mjml", stored.source)

    await page.set_viewport_size({"width": 375, "height": 800})
    await page.goto(f"{dashboard.url}/templates/{stored.id}/preview?width=mobile")
    frame = page.locator("iframe#preview")
    assert await frame.get_attribute("sandbox") == ""
    box = await frame.bounding_box()
    assert box is not None and box["width"] == 375
    preview = page.frame_locator("iframe#preview").locator("body")
    await preview.get_by_text("Picked for you").wait_for()
    await preview.get_by_text("Sample product 1").wait_for()
    await shot(page, "template-preview-mobile")
