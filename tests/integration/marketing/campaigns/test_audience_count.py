"""The wizard's audience count equals what the freeze then takes."""

from __future__ import annotations

from sqlalchemy import func, select

from courriel.marketing.campaigns.audience import count_audience, freeze
from courriel.marketing.campaigns.service import create_campaign, get_campaign
from courriel.marketing.consent import set_consent
from courriel.marketing.suppression import suppress
from courriel.marketing.types import ConsentChange
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients, campaigns

from .conftest import T0, Shop, add_contact


async def test_count_matches_the_freeze(database: Database, shop: Shop) -> None:
    # One contact off the list, one suppressed, one who withdrew consent: 7 - 2 = 5 left.
    await add_contact(database, "outsider@customer.example", list_id=None)
    async with database.write() as conn:
        await suppress(conn, kind="address", value="c1@customer.example", reason="bounce", now=T0)
        await set_consent(
            conn,
            shop.contacts["c2@customer.example"],
            ConsentChange(channel="email", status="unsubscribed", method="api"),
            now=T0,
        )
        counted = await count_audience(conn, [("list", shop.list_id)], now=T0)
        assert await count_audience(conn, [], now=T0) == 0
        made = await create_campaign(
            conn,
            name="Count",
            variants=[("Hi", shop.template_id)],
            audience=[("list", shop.list_id)],
            from_address="news@shop.example",
            now=T0,
        )
        await conn.execute(
            campaigns.update().where(campaigns.c.id == made.id).values(started_at=T0)
        )
        campaign = await get_campaign(conn, made.id)
    assert counted == 5
    assert await freeze(database, campaign) == counted
    async with database.read() as conn:
        frozen = await conn.scalar(
            select(func.count()).where(campaign_recipients.c.campaign_id == made.id)
        )
    assert frozen == counted
