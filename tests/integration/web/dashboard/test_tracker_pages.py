"""Dashboard tracker page: roles, CSRF, the key and snippet, bad input, remove. Both engines."""

from __future__ import annotations

from tests.integration.web.dashboard.conftest import Users

from courriel.integrations.tracker import add_site, find_site, list_sites
from courriel.web.app import WebServices


async def test_viewer_reads_but_cannot_add_or_remove(users: Users, services: WebServices) -> None:
    site = await add_site(
        services.db, "shop", origins=("https://shop.example",), now=services.clock()
    )
    viewer = await users.login("viewer")
    listing = await viewer.get("/tracker")
    assert listing.status_code == 200 and 'aria-current="page"' in listing.text
    assert site.public_key in listing.text and "https://shop.example" in listing.text
    assert f"data-site=&#34;{site.public_key}&#34;" in listing.text  # the snippet, for every role
    assert 'action="/tracker"' not in listing.text and "/remove" not in listing.text
    assert (await viewer.post("/tracker", {"name": "other"})).status_code == 403
    assert (await viewer.post("/tracker/shop/remove")).status_code == 403
    assert [s.name for s in await list_sites(services.db)] == ["shop"]


async def test_posts_without_csrf_are_refused(users: Users, services: WebServices) -> None:
    await add_site(services.db, "shop", now=services.clock())
    marketer = await users.login("marketer")
    assert (await marketer.client.post("/tracker", data={"name": "x"})).status_code == 403
    assert (await marketer.client.post("/tracker/shop/remove")).status_code == 403
    assert [s.name for s in await list_sites(services.db)] == ["shop"]


async def test_marketer_adds_a_site_and_sees_key_and_snippet(
    users: Users, services: WebServices
) -> None:
    marketer = await users.login("marketer")
    added = await marketer.post(
        "/tracker",
        {"name": "MyShop", "origins": "https://Shop.Example:443\nhttps://www.shop.example, "},
    )
    assert added.status_code == 201, added.text
    site = (await list_sites(services.db))[0]
    assert site.name == "myshop"
    assert site.origins == ("https://shop.example", "https://www.shop.example")
    assert f'<code id="site-key">{site.public_key}</code>' in added.text
    base = services.public_url.rstrip("/")
    assert f"{base}/t/tracker.js&#34; data-site=&#34;{site.public_key}&#34;" in added.text
    assert await find_site(services.db, site.public_key) == site
    listing = await marketer.get("/tracker")
    assert site.public_key in listing.text and 'action="/tracker/myshop/remove"' in listing.text


async def test_any_origin_when_none_given(users: Users, services: WebServices) -> None:
    owner = await users.login("owner")
    assert (await owner.post("/tracker", {"name": "open", "origins": ""})).status_code == 201
    assert (await list_sites(services.db))[0].origins == ()
    assert "any origin" in (await owner.get("/tracker")).text


async def test_bad_input_re_renders_with_the_message(users: Users, services: WebServices) -> None:
    await add_site(services.db, "taken", now=services.clock())
    marketer = await users.login("marketer")
    empty = await marketer.post("/tracker", {"name": "  "})
    assert empty.status_code == 422 and "site name must be 1 to 56 characters" in empty.text
    bad_name = await marketer.post("/tracker", {"name": "My Shop!"})
    assert bad_name.status_code == 422 and 'value="My Shop!"' in bad_name.text
    taken = await marketer.post("/tracker", {"name": "taken"})
    assert taken.status_code == 422 and "exists already" in taken.text
    bad_origin = await marketer.post(
        "/tracker", {"name": "new", "origins": "https://shop.example/path"}
    )
    assert bad_origin.status_code == 422 and 'role="alert"' in bad_origin.text
    assert "origin has more than scheme, host, port" in bad_origin.text
    assert "https://shop.example/path</textarea>" in bad_origin.text  # the input is kept
    ftp = await marketer.post("/tracker", {"name": "new", "origins": "ftp://shop.example"})
    assert ftp.status_code == 422 and "origin must be http(s)://host[:port]" in ftp.text
    assert [s.name for s in await list_sites(services.db)] == ["taken"]


async def test_remove_a_site_and_unknown_site(users: Users, services: WebServices) -> None:
    site = await add_site(services.db, "shop", now=services.clock())
    marketer = await users.login("marketer")
    removed = await marketer.post("/tracker/shop/remove")
    assert removed.status_code == 303 and removed.headers["location"] == "/tracker?done=removed"
    assert await find_site(services.db, site.public_key) is None
    done = await marketer.get(removed.headers["location"])
    assert "Site removed: its key no longer works." in done.text
    crafted = await marketer.get("/tracker?removed=evil&done=Your+account+is+locked")
    assert "evil" not in crafted.text and "locked" not in crafted.text
    missing = await marketer.post("/tracker/shop/remove")
    assert missing.status_code == 404 and "no tracker site" in missing.text
