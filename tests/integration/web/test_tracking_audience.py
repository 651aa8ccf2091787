"""A one-click unsubscribe keeps the contact out of the next campaign's frozen audience."""

from __future__ import annotations

import httpx
from sqlalchemy import insert, select
from tests.integration.marketing.campaigns_tracking.seed import T0, seed_campaign

from courriel.marketing.campaigns.audience import freeze
from courriel.marketing.campaigns.service import get_campaign
from courriel.marketing.campaigns.tokens import Links
from courriel.marketing.lists import create_list, subscribe
from courriel.storage.db import Database
from courriel.storage.models.campaigns import (
    campaign_recipients,
    campaign_stats,
    campaign_variants,
    campaigns,
    templates,
)
from courriel.web.app import WebServices

PEOPLE = ["ann@example.com", "bob@example.com"]


async def _next_campaign(db: Database, list_id: int) -> int:
    async with db.write() as conn:
        template_id = (await conn.execute(select(templates.c.id))).scalars().first()
        campaign_id = (
            await conn.execute(
                insert(campaigns)
                .values(
                    name="Next",
                    from_address="shop@shop.test",
                    audience=[{"kind": "list", "id": list_id}],
                    status="sending",
                    started_at=T0.replace(hour=18),
                    created_at=T0,
                    updated_at=T0,
                )
                .returning(campaigns.c.id)
            )
        ).scalar_one()
        variant_id = (
            await conn.execute(
                insert(campaign_variants)
                .values(campaign_id=campaign_id, label="A", subject="Next", template_id=template_id)
                .returning(campaign_variants.c.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(campaign_stats).values(campaign_id=campaign_id, variant_id=variant_id)
        )
    return int(campaign_id)


async def test_one_click_then_the_next_freeze_skips_the_contact(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    seeded = await seed_campaign(database, PEOPLE)
    async with database.write() as conn:
        newsletter = await create_list(conn, name="Newsletter", now=T0)
        for email in PEOPLE:
            await subscribe(conn, newsletter.id, seeded.contacts[email], method="form", now=T0)
    url = Links(services.links, services.public_url).unsubscribe_url(seeded.refs[PEOPLE[0]])
    response = await client.post(
        url.removeprefix("https://mail.shop.test"),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    campaign_id = await _next_campaign(database, newsletter.id)
    async with database.read() as conn:
        campaign = await get_campaign(conn, campaign_id)
    assert await freeze(database, campaign) == 1
    async with database.read() as conn:
        frozen = (
            (
                await conn.execute(
                    select(campaign_recipients.c.email).where(
                        campaign_recipients.c.campaign_id == campaign_id
                    )
                )
            )
            .scalars()
            .all()
        )
    assert frozen == ["bob@example.com"]
