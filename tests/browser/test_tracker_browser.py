"""The tracker snippet in headless Chromium against a storefront on another loopback port.

The storefront (one origin) loads ``/t/tracker.js`` from courriel's HTTP server (another
origin), so every call is a real cross-origin request: queued calls, the automatic
"Active on Site", a click, identify, a JSON call that needs a preflight, and a page on an
origin the site does not allow. The database rows are the proof.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from courriel.integrations.tracker import add_site
from courriel.marketing.contacts import find_contact_id
from courriel.marketing.links import LinkSigner
from courriel.storage.db import Database
from courriel.storage.models.marketing import contacts, events
from courriel.web import tracker as tracker_web
from courriel.web.app import WebServices, create_app
from courriel.web.server import HttpServer

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Test shop</title>
<script>
window.courriel = window.courriel || [];
["identify", "track"].forEach(function (m) {
  courriel[m] = courriel[m] || function () {
    courriel.push([m].concat([].slice.call(arguments)));
  };
});
courriel.track("Viewed Product", {ProductID: "42", ProductName: "Blue mug", Price: 12.5});
</script>
<script src="COURRIEL/t/tracker.js" data-site="SITE_KEY" async></script>
</head><body>
<h1>Blue mug</h1>
<button id="add" onclick="courriel.track('Added to Cart', {ProductID: '42'}, 12.5)">Add</button>
<form id="signup" onsubmit="event.preventDefault();
  courriel.identify({email: this.email.value, first_name: this.first.value});">
  <input name="first" value="Ana"><input name="email" value="Ana@Example.com">
  <button id="identify" type="submit">Sign up</button>
</form>
</body></html>
"""


class NoMail:
    """The Mailer port for a server that must never send mail here."""

    async def send(
        self, *, sender: str, recipient: str, message: bytes, transactional: bool = True
    ) -> None:
        raise AssertionError(f"the tracker sent mail to {recipient}")


@pytest.fixture
async def courriel_url(database: Database) -> AsyncIterator[str]:
    """courriel's HTTP server (the tracker routes) on a loopback port."""
    services = WebServices(
        db=database,
        public_url="http://127.0.0.1",
        links=LinkSigner(b"browser-test-key" * 2),
        mailer=NoMail(),
        clock=lambda: datetime.now(UTC),
    )
    server = HttpServer(create_app(services, extra_routes=tracker_web.ROUTES))
    host, port = await server.start("127.0.0.1", 0)
    yield f"http://{host}:{port}"
    await server.stop(grace=1)


def write_shop(folder: Path, courriel: str, key: str) -> Path:
    folder.mkdir(exist_ok=True)
    page = PAGE.replace("COURRIEL", courriel).replace("SITE_KEY", key)
    (folder / "index.html").write_text(page, encoding="utf-8")
    return folder


async def tracker_rows(database: Database) -> list[dict[str, Any]]:
    async with database.read() as conn:
        rows = await conn.execute(select(events).order_by(events.c.id))
        return [dict(r) for r in rows.mappings()]


class CallWatcher:
    """Counts the tracker responses a page gets, so a test can await them."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, int]] = []
        self._changed = asyncio.Event()

    def watch(self, page: Any) -> None:
        page.on("response", lambda response: self._seen(response.url, response.status))
        # A response the CORS check refuses is a failed request for the page (status 0).
        page.on("requestfailed", lambda request: self._seen(request.url, 0))

    def _seen(self, url: str, status: int) -> None:
        if "/t/v1/" in url:
            self.statuses.append((url.split("/t/v1/")[1].split("?", maxsplit=1)[0], status))
            self._changed.set()

    async def wait_for(self, count: int) -> list[tuple[str, int]]:
        while len(self.statuses) < count:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), timeout=30)
        return self.statuses


async def test_storefront_identify_and_track(
    browser: Any,
    database: Database,
    courriel_url: str,
    serve_pages: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    shop_folder = tmp_path / "shop"
    shop_folder.mkdir()
    shop = serve_pages(shop_folder)
    site = await add_site(database, "storefront", origins=(shop,), now=datetime.now(UTC))
    write_shop(shop_folder, courriel_url, site.public_key)

    page = await browser.new_page()
    watcher = CallWatcher()
    watcher.watch(page)
    await page.goto(f"{shop}/index.html")
    # "Active on Site" (automatic) and the call queued before the script loaded.
    assert sorted(await watcher.wait_for(2)) == [("track", 204), ("track", 204)]
    browser_id = await page.evaluate("() => courriel.browserId()")
    assert browser_id == await page.evaluate("() => localStorage.getItem('courriel.browser_id')")

    async with page.expect_response(lambda r: "/t/v1/track" in r.url) as clicked:
        await page.click("#add")
    assert (await clicked.value).status == 204
    rows = await tracker_rows(database)
    assert sorted(r["name"] for r in rows) == ["Active on Site", "Added to Cart", "Viewed Product"]
    assert {(r["anonymous_id"], r["contact_id"], r["source"]) for r in rows} == {
        (browser_id, None, "tracker:storefront")
    }
    active = next(r for r in rows if r["name"] == "Active on Site")
    assert active["properties"]["URL"] == f"{shop}/index.html"

    async with page.expect_response(lambda r: "/t/v1/identify" in r.url) as signed_up:
        await page.click("#identify")
    assert (await signed_up.value).status == 204
    async with database.read() as conn:
        ana_id = await find_contact_id(conn, "ana@example.com")
        ana = (await conn.execute(select(contacts).where(contacts.c.id == ana_id))).one()
    assert ana.first_name == "Ana" and ana.email_status == "never"
    # identify merged the browser's earlier events into Ana.
    assert {r["contact_id"] for r in await tracker_rows(database)} == {ana_id}

    # After identify, a track call is Ana's at once; a reload keeps the browser id and
    # does not repeat "Active on Site" in the same session.
    await page.reload()
    assert await page.evaluate("() => courriel.browserId()") == browser_id
    assert await page.evaluate("() => courriel.track('Started Checkout', {Items: 1})") is True
    rows = await tracker_rows(database)
    assert [r["name"] for r in rows].count("Active on Site") == 1
    checkout = next(r for r in rows if r["name"] == "Started Checkout")
    assert checkout["contact_id"] == ana_id

    # A JSON body needs a CORS preflight: Chromium sends it and accepts the answer.
    status = await page.evaluate(
        """async ([url, body]) => (await fetch(url, {method: "POST", body,
            headers: {"Content-Type": "application/json"}})).status""",
        [
            f"{courriel_url}/t/v1/track?site={site.public_key}",
            json.dumps({"anonymous_id": browser_id, "event": "Viewed Collection"}),
        ],
    )
    assert status == 204
    await page.screenshot(path=str(tmp_path / "storefront.png"), full_page=True)
    assert (tmp_path / "storefront.png").stat().st_size > 0
    await page.close()


async def test_page_on_another_origin_is_refused(
    browser: Any,
    database: Database,
    courriel_url: str,
    serve_pages: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    site = await add_site(
        database, "storefront", origins=("https://shop.example",), now=datetime.now(UTC)
    )
    other = serve_pages(write_shop(tmp_path / "other", courriel_url, site.public_key))
    page = await browser.new_page()
    watcher = CallWatcher()
    watcher.watch(page)
    await page.goto(f"{other}/index.html")
    # courriel answers 403 without CORS headers: for the page the calls fail (fetch
    # rejects), and nothing is stored.
    assert await watcher.wait_for(2) == [("track", 0), ("track", 0)]
    assert await page.evaluate("() => courriel.track('Added to Cart', {})") is False
    assert await tracker_rows(database) == []
    await page.screenshot(path=str(tmp_path / "refused.png"))
    await page.close()
