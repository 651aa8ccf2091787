"""The tracker's HTTP edge through the Litestar app: snippet, site key, origin and CORS,
size, content type, malformed bodies and the rate limit (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from litestar import Litestar
from sqlalchemy import func, select

from courriel.integrations.tracker import RateLimiter, TrackerSite, add_site
from courriel.storage.db import Database
from courriel.storage.models.marketing import events
from courriel.web.tracker import STATE_KEY, TrackerState

SHOP = "https://shop.example"
BROWSER = "0123456789abcdef0123456789abcdef"


def track_body(name: str = "Viewed Product", **extra: Any) -> str:
    return json.dumps({"anonymous_id": BROWSER, "event": name, "properties": {}, **extra})


async def post_track(
    client: httpx.AsyncClient,
    site: TrackerSite | str,
    body: str | bytes | None = None,
    *,
    origin: str | None = SHOP,
    content_type: str = "text/plain;charset=UTF-8",
) -> httpx.Response:
    key = site if isinstance(site, str) else site.public_key
    headers = {"Content-Type": content_type}
    if origin is not None:
        headers["Origin"] = origin
    return await client.post(
        "/t/v1/track",
        params={"site": key} if key else None,
        content=track_body() if body is None else body,
        headers=headers,
    )


async def event_count(database: Database) -> int:
    async with database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


# -- the snippet ------------------------------------------------------------------------


async def test_snippet_is_served_with_cache_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/t/tracker.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "max-age=3600" in response.headers["cache-control"]
    assert "courriel.identify" in response.text and "sendBeacon" in response.text
    etag = response.headers["etag"]
    again = await client.get("/t/tracker.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = await client.get("/t/tracker.js", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200 and other.content == response.content


# -- site key and origin ----------------------------------------------------------------


async def test_missing_or_unknown_site_key_is_401(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    for key in ("", "pk_" + "0" * 32, "x" * 200):
        response = await post_track(client, key)
        body = assert_problem(response, 401)
        assert body["field"] == "site"
        assert response.headers["www-authenticate"].startswith("SiteKey")
    assert await event_count(database) == 0


async def test_disallowed_or_missing_origin_is_403_without_cors(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    for origin in ("https://evil.example", "null", "http://shop.example", None):
        response = await post_track(client, site, origin=origin)
        assert_problem(response, 403)
        assert "access-control-allow-origin" not in response.headers
    assert await event_count(database) == 0


async def test_allowed_origin_is_echoed_never_star(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    # Origins compare in serialised form: case and the default port do not matter.
    for origin in (SHOP, "https://SHOP.example:443"):
        response = await post_track(client, site, origin=origin)
        assert response.status_code == 204, response.text
        assert response.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-credentials" not in response.headers
        assert "Origin" in response.headers["vary"]
    assert await event_count(database) == 2


async def test_site_without_origins_accepts_any_origin(
    client: httpx.AsyncClient, database: Database, clock: Callable[[], Any]
) -> None:
    open_site = await add_site(database, "open", now=clock())
    response = await post_track(client, open_site, origin="http://127.0.0.1:8080")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "http://127.0.0.1:8080"
    response = await post_track(client, open_site, origin=None)
    assert response.status_code == 204
    assert "access-control-allow-origin" not in response.headers


async def test_preflight(client: httpx.AsyncClient, site: TrackerSite) -> None:
    request_headers = {
        "Origin": SHOP,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    for path in ("/t/v1/identify", "/t/v1/track"):
        response = await client.options(
            path, params={"site": site.public_key}, headers=request_headers
        )
        assert response.status_code == 204, response.text
        assert response.headers["access-control-allow-origin"] == SHOP
        assert "POST" in response.headers["access-control-allow-methods"]
        assert "content-type" in response.headers["access-control-allow-headers"].lower()
        assert int(response.headers["access-control-max-age"]) > 0
    evil = {**request_headers, "Origin": "https://evil.example"}
    response = await client.options("/t/v1/track", params={"site": site.public_key}, headers=evil)
    assert_problem(response, 403)
    assert "access-control-allow-origin" not in response.headers
    response = await client.options("/t/v1/track", params={"site": "nope"}, headers=evil)
    assert_problem(response, 401)


# -- bodies -----------------------------------------------------------------------------


async def test_oversized_body_is_413(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    padding = "x" * 9000
    response = await post_track(client, site, track_body(padding="x" * 9000))
    assert_problem(response, 413)
    assert response.headers["access-control-allow-origin"] == SHOP

    # Without Content-Length (chunked), the body is cut off at the limit too.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield padding.encode()

    response = await client.post(
        "/t/v1/track",
        params={"site": site.public_key},
        content=chunks(),
        headers={"Origin": SHOP, "Content-Type": "application/json"},
    )
    assert_problem(response, 413)
    assert await event_count(database) == 0


async def test_content_type_must_be_json_or_text(
    client: httpx.AsyncClient, site: TrackerSite
) -> None:
    response = await post_track(client, site, content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415)
    response = await post_track(client, site, content_type="application/json")
    assert response.status_code == 204


async def test_malformed_bodies(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    for raw in ("{not json", "[1, 2]", '"text"', b"\xff\xfe"):
        response = await post_track(client, site, raw)
        assert_problem(response, 400)
        assert response.headers["access-control-allow-origin"] == SHOP
    cases = {
        "anonymous_id": json.dumps({"anonymous_id": "ABC", "event": "X"}),
        "event": track_body(""),
        "properties": track_body(properties=[1]),
        "value": track_body(value="12"),
        "event_id": track_body(event_id="has space"),
    }
    for field, raw in [*cases.items(), ("event", track_body("n" * 129))]:
        body = assert_problem(await post_track(client, site, raw), 422)
        assert body["field"] == field
        assert body["errors"][0]["field"] == field
    big = track_body(properties={"p": "y" * 4100})
    assert assert_problem(await post_track(client, site, big), 422)["field"] == "properties"
    assert await event_count(database) == 0


# -- rate limit -------------------------------------------------------------------------


async def test_rate_limit_per_site_and_client(
    client: httpx.AsyncClient,
    client_from: Callable[[str], httpx.AsyncClient],
    site: TrackerSite,
    database: Database,
    clock: Any,
) -> None:
    for _ in range(20):  # the burst
        assert (await post_track(client, site)).status_code == 204
    refused = await post_track(client, site)
    assert_problem(refused, 429)
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["access-control-allow-origin"] == SHOP
    # Another client address has its own bucket.
    async with client_from("198.51.100.7") as other:
        assert (await post_track(other, site)).status_code == 204
    # 60 a minute: one second gives one token back.
    clock.advance(1)
    assert (await post_track(client, site)).status_code == 204
    assert (await post_track(client, site)).status_code == 429
    assert await event_count(database) == 22


async def test_rate_limit_can_be_injected(
    app: Litestar, client: httpx.AsyncClient, site: TrackerSite
) -> None:
    now = [0.0]
    app.state[STATE_KEY] = TrackerState(
        limiter=RateLimiter(per_minute=6, burst=2, clock=lambda: now[0])
    )
    assert (await post_track(client, site)).status_code == 204
    assert (await post_track(client, site)).status_code == 204
    refused = await post_track(client, site)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
    now[0] = 10.0
    assert (await post_track(client, site)).status_code == 204
