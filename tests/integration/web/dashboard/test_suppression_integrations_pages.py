"""Dashboard suppression and integrations pages: roles, CSRF, bad input, the secret once.

Suppression: every role reads, marketers and owners write. Integrations: every role
reads, only the owner connects or disconnects a shop. Runs on both engines.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert
from tests.integration.web.conftest import Clock
from tests.integration.web.dashboard.conftest import Users

from courriel.integrations.registry import get_by_name, list_integrations
from courriel.marketing.suppression import (
    address_hash,
    get_suppression,
    is_suppressed,
    list_suppressions,
    suppress,
)
from courriel.storage.models.marketing import webhook_receipts
from courriel.web.app import WebServices


async def test_suppression_roles_and_csrf(users: Users) -> None:
    viewer = await users.login("viewer")
    page = await viewer.get("/suppression")
    assert page.status_code == 200 and 'aria-current="page"' in page.text
    assert 'method="post" action="/suppression"' not in page.text  # no add form
    assert (
        await viewer.post("/suppression", {"kind": "address", "value": "a@b.test"})
    ).status_code == 403
    removal = {"kind": "address", "value": "a@b.test"}
    assert (await viewer.post("/suppression/remove", removal)).status_code == 403
    marketer = await users.login("marketer")
    no_csrf = await marketer.client.post(
        "/suppression", data={"kind": "address", "value": "a@b.test"}
    )
    assert no_csrf.status_code == 403
    assert (
        await marketer.post("/suppression", {"kind": "address", "value": "a@b.test"})
    ).status_code == 303
    owner = await users.login("owner")
    assert (await owner.post("/suppression/remove", removal)).status_code == 303


async def test_suppression_add_search_page_remove(users: Users, services: WebServices) -> None:
    marketer = await users.login("marketer")
    added = await marketer.post("/suppression", {"kind": "address", "value": "Ann@Example.TEST"})
    assert added.status_code == 303
    assert added.headers["location"] == "/suppression?done=added"
    listing = await marketer.get(added.headers["location"])
    assert 'role="status">Suppressed: no marketing mail goes to it.' in listing.text
    assert (
        await marketer.post("/suppression", {"kind": "domain", "value": "Spam.TEST"})
    ).status_code == 303
    again = await marketer.post("/suppression", {"kind": "domain", "value": "spam.test"})
    assert again.status_code == 303  # idempotent, as the API
    async with services.db.read() as conn:
        entries = await list_suppressions(conn)
        assert [(e.kind, e.value, e.reason) for e in entries] == [
            ("address", "ann@example.test", "manual"),
            ("domain", "spam.test", "manual"),
        ]
        assert await is_suppressed(conn, "x@mx.spam.test")

    blocked = await marketer.get("/suppression?q=x@mx.spam.test")
    assert "is blocked" in blocked.text
    free = await marketer.get("/suppression?q=bob@example.test")
    assert "is not blocked" in free.text
    bad_query = await marketer.get("/suppression?q=not-an-address")
    assert bad_query.status_code == 200 and 'role="alert"' in bad_query.text
    only_domains = await marketer.get("/suppression?kind=domain")
    assert "spam.test" in only_domains.text and "ann@example.test" not in only_domains.text

    bad = await marketer.post("/suppression", {"kind": "address", "value": "not an address"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert 'value="not an address"' in bad.text
    bad_kind = await marketer.post("/suppression", {"kind": "hash", "value": "ab"})
    assert bad_kind.status_code == 422

    removed = await marketer.post(
        "/suppression/remove", {"kind": "address", "value": "ann@example.test"}
    )
    assert removed.status_code == 303
    missing = await marketer.post(
        "/suppression/remove", {"kind": "address", "value": "ann@example.test"}
    )
    assert missing.status_code == 404 and "not on the suppression list" in missing.text


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("hash", address_hash("gone@example.test"), "forgotten"),
        ("address", "bounced@example.test", "bounce"),
        ("address", "angry@example.test", "complaint"),
        ("address", "left@example.test", "unsubscribe"),
        ("domain", "dead.test", "bounce"),
    ],
)
async def test_only_owners_remove_protective_suppressions(
    users: Users, services: WebServices, kind: str, value: str, reason: str
) -> None:
    async with services.db.write() as conn:
        await suppress(conn, kind=kind, value=value, reason=reason, now=services.clock())  # type: ignore[arg-type]
    marketer = await users.login("marketer")
    page = await marketer.get("/suppression")
    assert "owner only" in page.text and 'id="remove-rule"' in page.text
    refused = await marketer.post("/suppression/remove", {"kind": kind, "value": value})
    assert refused.status_code == 403 and "only an owner can remove" in refused.text
    async with services.db.read() as conn:
        assert await get_suppression(conn, kind=kind, value=value) is not None  # type: ignore[arg-type]
    owner = await users.login("owner")
    assert "owner only" not in (await owner.get("/suppression")).text
    assert (
        await owner.post("/suppression/remove", {"kind": kind, "value": value})
    ).status_code == 303
    async with services.db.read() as conn:
        assert await get_suppression(conn, kind=kind, value=value) is None  # type: ignore[arg-type]


async def test_suppression_and_integration_notices_never_come_from_the_url(users: Users) -> None:
    owner = await users.login("owner")
    for url in ("/suppression?added=Evil&removed=Evil", "/integrations?removed=Evil"):
        page = await owner.get(url)
        assert page.status_code == 200
        assert "Evil" not in page.text and 'role="status"' not in page.text, url
    done = await owner.get("/integrations?done=removed")
    assert 'role="status">Shop disconnected' in done.text


async def test_suppression_pages_by_cursor(users: Users, services: WebServices) -> None:
    marketer = await users.login("marketer")
    for n in range(101):
        await marketer.post("/suppression", {"kind": "address", "value": f"p{n:03d}@page.test"})
    first = await marketer.get("/suppression")
    assert "p099@page.test" in first.text and "p100@page.test" not in first.text
    async with services.db.read() as conn:
        hundredth = (await list_suppressions(conn, limit=100))[-1].id
    assert f"after={hundredth}" in first.text
    second = await marketer.get(f"/suppression?after={hundredth}")
    assert "p100@page.test" in second.text and "p099@page.test" not in second.text


async def test_integrations_roles(users: Users) -> None:
    shop = {"kind": "woocommerce", "name": "my-shop", "secret": ""}
    for role in ("viewer", "marketer"):
        browser = await users.login(role)
        page = await browser.get("/integrations")
        assert page.status_code == 200 and 'action="/integrations"' not in page.text
        assert (await browser.post("/integrations", shop)).status_code == 403
        assert (await browser.post("/integrations/my-shop/remove")).status_code == 403
    owner = await users.login("owner")
    assert 'action="/integrations"' in (await owner.get("/integrations")).text
    assert (await owner.client.post("/integrations", data=shop)).status_code == 403  # no CSRF


async def test_connect_a_shop_shows_the_secret_once(
    users: Users, services: WebServices, clock: Clock
) -> None:
    owner = await users.login("owner")
    added = await owner.post("/integrations", {"kind": "woocommerce", "name": "my-shop"})
    assert added.status_code == 201
    assert "https://mail.shop.test/hooks/woocommerce/my-shop" in added.text
    stored = await get_by_name(services.db, "my-shop")
    assert len(stored.secret) >= 40 and stored.secret in added.text
    listing = await owner.get("/integrations")
    assert "/hooks/woocommerce/my-shop" in listing.text and stored.secret not in listing.text

    entered = await owner.post(
        "/integrations", {"kind": "shopify", "name": "big-shop", "secret": "shpss_given"}
    )
    assert entered.status_code == 201 and "shpss_given" in entered.text
    assert (await get_by_name(services.db, "big-shop")).secret == "shpss_given"

    duplicate = await owner.post("/integrations", {"kind": "shopify", "name": "my-shop"})
    assert duplicate.status_code == 422 and "exists" in duplicate.text
    bad_name = await owner.post("/integrations", {"kind": "shopify", "name": "My Shop!"})
    assert bad_name.status_code == 422 and "a-z" in bad_name.text
    bad_kind = await owner.post("/integrations", {"kind": "magento", "name": "m"})
    assert bad_kind.status_code == 422 and "unknown integration kind" in bad_kind.text

    removed = await owner.post("/integrations/big-shop/remove")
    assert removed.status_code == 303
    assert [i.name for i in await list_integrations(services.db)] == ["my-shop"]
    assert (await owner.post("/integrations/big-shop/remove")).status_code == 404


async def test_last_webhooks_with_their_status(
    users: Users, services: WebServices, clock: Clock
) -> None:
    owner = await users.login("owner")
    await owner.post("/integrations", {"kind": "shopify", "name": "my-shop", "secret": "s3cret"})
    shop = await get_by_name(services.db, "my-shop")
    rows = [
        {"delivery_id": f"d{n}", "topic": topic, "status": status, "detail": detail,
         "received_at": clock.now + timedelta(minutes=n), "integration_id": shop.id}
        for n, (topic, status, detail) in enumerate(
            [("orders/create", "applied", ""), ("orders/paid", "rejected", "bad signature"),
             ("products/update", "ignored", "unknown product")]
        )
    ]  # fmt: skip
    async with services.db.write() as conn:
        await conn.execute(insert(webhook_receipts), rows)
    viewer = await users.login("viewer")
    page = (await viewer.get("/integrations")).text
    assert page.index("products/update") < page.index("orders/paid") < page.index("orders/create")
    assert '<span class="badge bad">rejected</span>' in page and "bad signature" in page
    assert '<span class="badge ok">applied</span>' in page
