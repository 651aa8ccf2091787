"""What identify and track store, through the HTTP endpoints (SQLite and PostgreSQL):
anonymous events, the merge on identify, events after identify, never any consent."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import select, update

from courriel.integrations.tracker import TrackerSite
from courriel.marketing.contacts import find_contact_id, get_contact
from courriel.marketing.types import Contact
from courriel.storage.db import Database
from courriel.storage.models.marketing import browser_ids, consents, contacts, events

SHOP = "https://shop.example"
ANA_BROWSER = "a" * 32
BOB_BROWSER = "b" * 32


async def call(
    client: httpx.AsyncClient, site: TrackerSite, kind: str, body: dict[str, Any]
) -> httpx.Response:
    response = await client.post(
        f"/t/v1/{kind}",
        params={"site": site.public_key},
        content=json.dumps(body),
        headers={"Origin": SHOP, "Content-Type": "application/json"},
    )
    return response


async def tracked(
    client: httpx.AsyncClient, site: TrackerSite, browser: str, name: str, **extra: Any
) -> None:
    body = {"anonymous_id": browser, "event": name, "properties": {"URL": "/p/1"}, **extra}
    response = await call(client, site, "track", body)
    assert response.status_code == 204, response.text


async def identified(
    client: httpx.AsyncClient, site: TrackerSite, browser: str, **profile: Any
) -> None:
    response = await call(client, site, "identify", {"anonymous_id": browser, "profile": profile})
    assert response.status_code == 204, response.text


async def event_rows(database: Database) -> list[dict[str, Any]]:
    async with database.read() as conn:
        rows = await conn.execute(select(events).order_by(events.c.id))
        return [dict(row) for row in rows.mappings()]


async def contact(database: Database, email: str) -> Contact:
    async with database.read() as conn:
        contact_id = await find_contact_id(conn, email)
        assert contact_id is not None
        return await get_contact(conn, contact_id)


async def test_track_before_identify_is_merged(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    await tracked(client, site, ANA_BROWSER, "Active on Site")
    await tracked(client, site, ANA_BROWSER, "Viewed Product", value=12.5)
    await tracked(client, site, BOB_BROWSER, "Viewed Product")
    rows = await event_rows(database)
    assert [r["contact_id"] for r in rows] == [None, None, None]
    assert rows[1]["source"] == "tracker:shop" and rows[1]["value"] == 12.5
    assert rows[1]["properties"] == {"URL": "/p/1"}

    await identified(client, site, ANA_BROWSER, email="Ana@Example.COM", first_name="Ana")
    ana = await contact(database, "ana@example.com")
    rows = await event_rows(database)
    # Ana's two anonymous events are hers now; Bob's browser is untouched.
    assert [r["contact_id"] for r in rows] == [ana.id, ana.id, None]
    assert [r["anonymous_id"] for r in rows] == [ANA_BROWSER, ANA_BROWSER, BOB_BROWSER]
    assert ana.first_name == "Ana" and ana.source == "tracker"


async def test_track_after_identify_has_the_contact(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    await identified(client, site, ANA_BROWSER, email="ana@example.com")
    await tracked(client, site, ANA_BROWSER, "Added to Cart", properties={"Price": 3})
    ana = await contact(database, "ana@example.com")
    rows = await event_rows(database)
    assert len(rows) == 1
    assert rows[0]["contact_id"] == ana.id and rows[0]["name"] == "Added to Cart"
    assert rows[0]["properties"] == {"Price": 3}
    async with database.read() as conn:
        link = (await conn.execute(select(browser_ids))).mappings().one()
    assert link["anonymous_id"] == ANA_BROWSER and link["contact_id"] == ana.id


async def test_identify_never_gives_consent(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    await identified(client, site, ANA_BROWSER, email="ana@example.com")
    ana = await contact(database, "ana@example.com")
    assert (ana.email_status, ana.sms_status) == ("never", "never")
    # A subscribed contact stays subscribed; a storefront cannot set consent fields.
    async with database.write() as conn:
        await conn.execute(
            update(contacts).where(contacts.c.id == ana.id).values(email_status="subscribed")
        )
    await identified(client, site, BOB_BROWSER, email="ana@example.com", city="Lyon")
    for key in ("email_status", "consent", "tags", "source"):
        response = await call(
            client,
            site,
            "identify",
            {"anonymous_id": ANA_BROWSER, "profile": {"email": "ana@example.com", key: "x"}},
        )
        assert response.status_code == 422 and response.json()["field"] == f"profile/{key}"
    ana = await contact(database, "ana@example.com")
    assert ana.email_status == "subscribed" and ana.city == "Lyon"
    async with database.read() as conn:
        assert (await conn.execute(select(consents))).first() is None


async def test_identify_never_clears_and_keeps_custom_attributes(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    await identified(client, site, ANA_BROWSER, email="ana@example.com", first_name="Ana")
    await identified(
        client, site, ANA_BROWSER, email="ana@example.com", first_name="", shoe_size=38
    )
    ana = await contact(database, "ana@example.com")
    assert ana.first_name == "Ana"
    assert ana.attributes == {"shoe_size": 38}


async def test_identify_errors_name_the_field(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"anonymous_id": ANA_BROWSER, "profile": {}}, "profile/email"),
        ({"anonymous_id": ANA_BROWSER, "profile": {"email": "not an address"}}, "profile/email"),
        (
            {"anonymous_id": ANA_BROWSER, "profile": {"email": "a@b.example", "city": 3}},
            "profile/city",
        ),
        ({"anonymous_id": ANA_BROWSER, "profile": "ana"}, "profile"),
        ({"profile": {"email": "a@b.example"}}, "anonymous_id"),
    ]
    for body, field in cases:
        response = await call(client, site, "identify", body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field
    async with database.read() as conn:
        assert (await conn.execute(select(contacts))).first() is None
        assert (await conn.execute(select(browser_ids))).first() is None


async def test_browser_identified_as_someone_else(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    # A shared computer: Ana's events stay hers when Bob identifies on the same browser.
    await identified(client, site, ANA_BROWSER, email="ana@example.com")
    await tracked(client, site, ANA_BROWSER, "Viewed Product")
    await identified(client, site, ANA_BROWSER, email="bob@example.com")
    await tracked(client, site, ANA_BROWSER, "Started Checkout")
    ana = await contact(database, "ana@example.com")
    bob = await contact(database, "bob@example.com")
    rows = await event_rows(database)
    assert [(r["name"], r["contact_id"]) for r in rows] == [
        ("Viewed Product", ana.id),
        ("Started Checkout", bob.id),
    ]


async def test_retried_call_is_stored_once(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    for _ in range(2):
        await tracked(client, site, ANA_BROWSER, "Viewed Product", event_id="e1")
    await tracked(client, site, ANA_BROWSER, "Viewed Product", event_id="e2")
    assert [r["unique_key"] for r in await event_rows(database)] == ["e1", "e2"]


async def test_forgotten_contact_loses_the_browser_link(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    await identified(client, site, ANA_BROWSER, email="ana@example.com")
    ana = await contact(database, "ana@example.com")
    async with database.write() as conn:
        await conn.execute(events.delete())
        await conn.execute(contacts.delete().where(contacts.c.id == ana.id))
    # The link went with the contact (ON DELETE CASCADE): new events are anonymous again.
    await tracked(client, site, ANA_BROWSER, "Active on Site")
    assert [r["contact_id"] for r in await event_rows(database)] == [None]
