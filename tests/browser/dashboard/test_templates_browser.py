"""The email template editor in Chromium: drag the product block in, save, preview on a phone;
the round-trip guard (a hand-written template the visual editor would change opens in the
code view, and an untouched one is saved byte for byte)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from tests.browser.dashboard.conftest import Dashboard

from courriel.marketing.templates.compile import compile_template
from courriel.marketing.templates.service import add_template, get_template, get_template_by_name

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


# Hand-written MJML the visual editor models: tags between sections, mj-raw in the body,
# comments, head attributes, hand formatting. Saved from the canvas untouched, byte for byte.
KEPT = """<mjml>
  <mj-head>
    <mj-title>Spring news</mj-title>
    <mj-preview>Our spring picks</mj-preview>
    <mj-attributes>
      <mj-all font-family="Georgia, serif"></mj-all>
      <mj-class name="muted" color="#777777"></mj-class>
    </mj-attributes>
  </mj-head>
  <mj-body background-color="#f4f4f4">
    <!-- hero: keep this comment -->
    <mj-section css-class="hero">
      <mj-column>
        <mj-text mj-class="muted">Hello {{ contact.first_name | default("there") }},</mj-text>
      </mj-column>
    </mj-section>
    {% if contact.first_name %}
    <mj-section>
      <mj-column>
        <mj-text>Members only: {{ shop.name }}</mj-text>
      </mj-column>
    </mj-section>
    {% endif %}
    <mj-raw><p class="legal">{{ shop.address }}</p></mj-raw>
    <mj-section>
      <mj-column>
        <mj-text font-size="11px"><a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""

# Table rows in a column's mj-raw (docs/templates.md's advice): GrapesJS keeps only their
# text, so the visual editor would save `<mj-raw>{{ shop.name }}</mj-raw>`.
CHANGED = """<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>Order summary</mj-text>
        <mj-raw><tr><td class="shop">{{ shop.name }}</td></tr></mj-raw>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


async def _stored_source(dashboard: Dashboard, template_id: int) -> str:
    async with dashboard.services.db.read() as conn:
        return (await get_template(conn, template_id)).source


async def _open(page: Any, dashboard: Dashboard, source: str, name: str) -> tuple[int, str]:
    """Store ``source`` as template ``name``; open its editor; how the guard opened it."""
    async with dashboard.services.db.write() as conn:
        made = await add_template(
            conn, name=name, kind="mjml", source=source, now=dashboard.services.clock()
        )
    await page.goto(f"{dashboard.url}/templates/{made.id}/edit")
    checked = page.locator("#gjs[data-checked]")
    await checked.wait_for(state="attached")
    return made.id, str(await checked.get_attribute("data-checked"))


async def _save(page: Any) -> None:
    await page.get_by_role("button", name="Save").click()
    await page.wait_for_url(re.compile(r"/templates/\d+/edit\?saved=1$"))


async def test_a_template_the_visual_editor_keeps_opens_there_and_saves_as_written(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    page = await dashboard.page(browser, "marketer")
    ident, opened = await _open(page, dashboard, KEPT, "hand-written")
    assert opened == "visual"
    body = page.frame_locator("#gjs iframe.gjs-frame").locator("body")
    await body.get_by_text("Members only").wait_for()
    assert await page.locator("#roundtrip-notice").is_hidden()
    await shot(page, "template-editor-roundtrip-visual")
    await _save(page)
    assert await _stored_source(dashboard, ident) == KEPT  # formatting and all

    # Through the code view and back, untouched: still the source as written.
    await page.get_by_role("button", name="Code view").click()
    assert await page.get_by_label("MJML source").input_value() == KEPT
    await page.get_by_role("button", name="Visual editor").click()
    await _save(page)
    assert await _stored_source(dashboard, ident) == KEPT


async def test_a_template_the_visual_editor_would_change_opens_in_code_view(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    page = await dashboard.page(browser, "marketer")
    ident, opened = await _open(page, dashboard, CHANGED, "rows-in-raw")
    assert opened == "code"
    notice = page.locator("#roundtrip-notice")
    await notice.wait_for()
    assert "<tr>" in await page.locator("#roundtrip-where").inner_text()
    assert await page.locator("#gjs").is_hidden()
    assert await page.get_by_label("MJML source").input_value() == CHANGED
    await shot(page, "template-editor-roundtrip-code")
    await _save(page)
    assert await _stored_source(dashboard, ident) == CHANGED
    await page.locator("#gjs[data-checked=code]").wait_for(state="attached")

    # The visual editor only by an explicit choice: refused, the code view stays.
    questions: list[str] = []

    async def answer(dialog: Any, accept: bool) -> None:
        questions.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())

    page.once("dialog", lambda d: answer(d, False))
    await page.get_by_role("button", name="Visual editor").click()
    assert await page.locator("#gjs").is_hidden()
    assert await page.get_by_role("button", name="Visual editor").is_visible()
    # Accepted, then edited on the canvas: saving stores the visual editor's version.
    page.once("dialog", lambda d: answer(d, True))
    await page.get_by_role("button", name="Visual editor").click()
    await page.locator("#gjs").wait_for()
    await page.evaluate(
        "() => window.courrielEditor.getWrapper().findType('mj-column')[0]"
        ".append('<mj-text>Added on the canvas</mj-text>')"
    )
    await _save(page)
    stored = await _stored_source(dashboard, ident)
    assert len(questions) == 2 and "would change or drop" in questions[0]
    assert "Added on the canvas" in stored
    assert "<tr>" not in stored  # what the warning was about
