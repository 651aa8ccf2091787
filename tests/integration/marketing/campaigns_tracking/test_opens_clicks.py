"""record_open / record_click: real opens, Apple MPP prefetches, clicks and per-URL counts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from tests.integration.marketing.campaigns_tracking.seed import (
    T0,
    seed_campaign,
    seed_transactional,
    stats_row,
)

from courriel.marketing.campaigns.tracking import is_prefetch, record_click, record_open
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_links, campaign_recipients
from courriel.storage.models.marketing import events

APPLE_IP = "17.58.100.4"
MAIL_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
GMAIL_UA = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)


async def _props(db: Database, name: str) -> list[dict]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(events.c.properties).where(events.c.name == name).order_by(events.c.id)
        )
        return [dict(r.properties) for r in rows]


def test_prefetch_detection() -> None:
    assert is_prefetch("Mozilla/5.0", APPLE_IP)
    assert not is_prefetch("Mozilla/5.0", "198.51.100.1")  # not Apple's network
    assert not is_prefetch(MAIL_UA, APPLE_IP)  # a person's Mail app on Apple's network
    assert not is_prefetch(GMAIL_UA, "66.249.84.1")  # Gmail's proxy: a real open
    assert not is_prefetch("Mozilla/5.0", None)
    assert not is_prefetch("Mozilla/5.0", "garbage")


async def test_prefetch_is_never_a_unique_open(database: Database) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    ref = seeded.refs["ann@example.com"]
    await record_open(database, ref, user_agent="Mozilla/5.0", ip=APPLE_IP, now=T0)
    after_prefetch = await stats_row(database, seeded.campaign_id)
    assert (after_prefetch["prefetches"], after_prefetch["opens"]) == (1, 0)
    assert after_prefetch["unique_opens"] == 0
    [event] = await _props(database, "Opened Email")
    assert event["prefetch"] is True and event["campaign_id"] == seeded.campaign_id
    for minute in (1, 2):
        await record_open(
            database, ref, user_agent=GMAIL_UA, ip="66.249.84.1", now=T0 + timedelta(minutes=minute)
        )
    final = await stats_row(database, seeded.campaign_id)
    assert (final["prefetches"], final["opens"], final["unique_opens"]) == (1, 2, 1)
    async with database.read() as conn:
        opened_at = (
            await conn.execute(
                select(campaign_recipients.c.opened_at).where(campaign_recipients.c.id == ref.id)
            )
        ).scalar_one()
    assert opened_at == T0 + timedelta(minutes=1)


async def test_clicks_count_per_url_and_imply_an_open(database: Database) -> None:
    seeded = await seed_campaign(database, ["ann@example.com", "bob@example.com"])
    ann, bob = seeded.refs["ann@example.com"], seeded.refs["bob@example.com"]
    shoes, hats = "https://shop.test/shoes", "https://shop.test/hats?x=1"
    for ref, url in ((ann, shoes), (ann, shoes), (ann, hats), (bob, shoes)):
        await record_click(database, ref, url, user_agent=MAIL_UA, ip="192.0.2.1", now=T0)
    report = await stats_row(database, seeded.campaign_id)
    assert (report["clicks"], report["unique_clicks"]) == (4, 2)
    # Neither opened (no pixel): their first click counts as their open, once.
    assert (report["opens"], report["unique_opens"]) == (2, 2)
    async with database.read() as conn:
        links = {
            r.url: (r.clicks, r.unique_clicks)
            for r in await conn.execute(
                select(campaign_links).where(campaign_links.c.campaign_id == seeded.campaign_id)
            )
        }
    assert links == {shoes: (3, 2), hats: (1, 1)}
    clicked = await _props(database, "Clicked Email")
    assert [c["url"] for c in clicked] == [shoes, shoes, hats, shoes]
    assert all(c["campaign_id"] == seeded.campaign_id for c in clicked)
    assert [o.get("implied") for o in await _props(database, "Opened Email")] == [True, True]


async def test_transactional_open_and_click_mark_the_message(database: Database) -> None:
    ref = await seed_transactional(database, "tx@example.com")
    await record_open(database, ref, user_agent=MAIL_UA, ip="192.0.2.1", now=T0)
    await record_click(database, ref, "https://shop.test/o/1", user_agent=None, ip=None, now=T0)
    [opened] = await _props(database, "Opened Email")
    [clicked] = await _props(database, "Clicked Email")
    assert opened["transactional_id"] == clicked["transactional_id"] == ref.id
    assert clicked["subject"] == "Your receipt"
