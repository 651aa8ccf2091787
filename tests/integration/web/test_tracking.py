"""Campaign tracking routes over HTTP: pixel, click redirect, unsubscribe, one-click POST."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from tests.integration.marketing.campaigns_tracking.seed import seed_campaign, stats_row
from tests.integration.web.conftest import assert_problem

from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.marketing.consent import consent_history
from courriel.storage.db import Database
from courriel.storage.models.marketing import contacts
from courriel.web.app import WebServices
from courriel.web.tracking import PIXEL

APPLE = {"User-Agent": "Mozilla/5.0", "X-Forwarded-For": "17.1.2.3"}
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


def _links(services: WebServices) -> Links:
    return Links(services.links, services.public_url)


def _path(url: str) -> str:
    return url.removeprefix("https://mail.shop.test")


async def _email_status(db: Database, contact_id: int) -> str:
    async with db.read() as conn:
        query = select(contacts.c.email_status).where(contacts.c.id == contact_id)
        return str((await conn.execute(query)).scalar_one())


async def test_open_pixel_is_a_gif_and_counts(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    url = _path(_links(services).open_url(seeded.refs["ann@example.com"]))
    response = await client.get(url, headers={"User-Agent": "Thunderbird"})
    assert response.status_code == 200
    assert response.content == PIXEL and len(response.content) == 43
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"] == "no-store, private"
    report = await stats_row(database, seeded.campaign_id)
    assert (report["opens"], report["unique_opens"], report["prefetches"]) == (1, 1, 0)


async def test_open_pixel_bad_token_is_400_and_records_nothing(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    good = _path(_links(services).open_url(seeded.refs["ann@example.com"]))
    assert_problem(await client.get(good[:-2] + "xx"), 400, field="token")
    # A token of another purpose (the click link) is refused too.
    other = _path(_links(services).unsubscribe_url(seeded.refs["ann@example.com"]))
    assert_problem(await client.get("/o/" + other.rsplit("/", 1)[1]), 400, field="token")
    assert (await stats_row(database, seeded.campaign_id))["opens"] == 0


async def test_click_redirects_and_counts(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    target = "https://shop.test/sale?utm_source=courriel&x=<1>"
    url = _path(_links(services).click_url(seeded.refs["ann@example.com"], target))
    response = await client.get(url)
    assert response.status_code == 302
    assert response.headers["location"] == target
    report = await stats_row(database, seeded.campaign_id)
    assert (report["clicks"], report["unique_clicks"], report["unique_opens"]) == (1, 1, 1)


async def test_tampered_click_token_is_400_never_a_redirect(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    ref = seeded.refs["ann@example.com"]
    links = _links(services)
    good = links.click_url(ref, "https://shop.test/a").rsplit("/", 1)[1]
    evil = links.click_url(ref, "https://evil.test/a").rsplit("/", 1)[1]
    # The URL part of one token with the MAC of another.
    swapped = evil.split(".")[0] + "." + good.split(".")[1]
    for token in (swapped, evil.split(".")[0], "garbage", good + "x"):
        response = await client.get(f"/c/{token}")
        assert_problem(response, 400, field="token")
        assert "location" not in response.headers
    # A token signed with another key (another installation) is refused too.
    foreign = Links(type(services.links)(b"z" * 32), services.public_url)
    token = foreign.click_url(ref, "https://evil.test/").rsplit("/", 1)[1]
    assert_problem(await client.get(f"/c/{token}"), 400, field="token")
    assert (await stats_row(database, seeded.campaign_id))["clicks"] == 0


async def test_click_of_a_deleted_campaign_still_redirects(
    client: httpx.AsyncClient, services: WebServices
) -> None:
    url = _path(_links(services).click_url(Ref("c", 424242), "http://shop.test/x"))
    response = await client.get(url)
    assert (response.status_code, response.headers["location"]) == (302, "http://shop.test/x")


async def test_unsubscribe_get_changes_nothing(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    seeded = await seed_campaign(database, ["o'hara&co@example.com"])
    url = _path(_links(services).unsubscribe_url(seeded.refs["o'hara&co@example.com"]))
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "o&#39;hara&amp;co@example.com" in response.text and "&co@" not in response.text
    assert f'action="{url}"' in response.text and 'method="post"' in response.text
    assert "/p/" in response.text
    assert await _email_status(database, seeded.contacts["o'hara&co@example.com"]) != "unsubscribed"
    assert (await stats_row(database, seeded.campaign_id))["unsubscribes"] == 0


async def test_rfc8058_one_click_post(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    seeded = await seed_campaign(database, ["ann@example.com", "bob@example.com"])
    url = _path(_links(services).unsubscribe_url(seeded.refs["ann@example.com"]))
    for _ in range(2):  # idempotent: the second POST changes nothing and still answers 200
        response = await client.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
        assert response.status_code == 200
        assert "no longer receive" in response.text
    assert await _email_status(database, seeded.contacts["ann@example.com"]) == "unsubscribed"
    assert await _email_status(database, seeded.contacts["bob@example.com"]) != "unsubscribed"
    assert (await stats_row(database, seeded.campaign_id))["unsubscribes"] == 1
    async with database.read() as conn:
        [proof] = await consent_history(conn, seeded.contacts["ann@example.com"])
    assert (proof.method, proof.status) == ("one_click", "unsubscribed")


async def test_form_post_and_multipart_one_click(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    seeded = await seed_campaign(database, ["ann@example.com", "bob@example.com"])
    links = _links(services)
    form = _path(links.unsubscribe_url(seeded.refs["ann@example.com"]))
    assert (await client.post(form)).status_code == 200  # the page's button: empty body
    multipart = _path(links.unsubscribe_url(seeded.refs["bob@example.com"]))
    response = await client.post(multipart, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    for email, method in (
        ("ann@example.com", "unsubscribe_link"),
        ("bob@example.com", "one_click"),
    ):
        async with database.read() as conn:
            [proof] = await consent_history(conn, seeded.contacts[email])
        assert proof.method == method
    assert (await stats_row(database, seeded.campaign_id))["unsubscribes"] == 2


async def test_unsubscribe_bad_token_is_an_html_400(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/u/nope.nope"), await client.post("/u/nope.nope")):
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/html")
        assert "not valid" in response.text


async def test_unsubscribe_after_the_contact_is_gone(
    client: httpx.AsyncClient, services: WebServices
) -> None:
    url = _path(_links(services).unsubscribe_url(Ref("c", 777)))
    assert (await client.get(url)).status_code == 200
    response = await client.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert response.status_code == 200 and "no longer receive" in response.text


async def test_tracking_routes_are_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.split("/")[1] in {"o", "c", "u", "p"}]
