"""unsubscribe(): consent, the recipient's mark, the report counter and the event, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select
from tests.integration.marketing.campaigns_tracking.seed import (
    T0,
    seed_campaign,
    seed_transactional,
    stats_row,
)

from courriel.errors import InvalidInput
from courriel.marketing.campaigns.tokens import Ref
from courriel.marketing.campaigns.tracking import unsubscribe
from courriel.marketing.consent import consent_history
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients, campaigns
from courriel.storage.models.marketing import contacts, events


async def _status(db: Database, contact_id: int) -> str:
    async with db.read() as conn:
        return str(
            (
                await conn.execute(
                    select(contacts.c.email_status).where(contacts.c.id == contact_id)
                )
            ).scalar_one()
        )


async def _events(db: Database, name: str) -> list[dict]:
    async with db.read() as conn:
        rows = await conn.execute(select(events).where(events.c.name == name).order_by(events.c.id))
        return [dict(r) for r in rows.mappings()]


async def test_unsubscribe_records_everything_once(database: Database) -> None:
    seeded = await seed_campaign(database, ["ann@example.com", "bob@example.com"])
    ref = seeded.refs["ann@example.com"]
    for step in range(2):
        who = await unsubscribe(
            database, ref, method="one_click", ip="192.0.2.7", now=T0 + timedelta(minutes=step)
        )
        assert who is not None and who.email == "ann@example.com"
    contact_id = seeded.contacts["ann@example.com"]
    assert await _status(database, contact_id) == "unsubscribed"
    assert await _status(database, seeded.contacts["bob@example.com"]) != "unsubscribed"
    assert (await stats_row(database, seeded.campaign_id))["unsubscribes"] == 1
    async with database.read() as conn:
        history = await consent_history(conn, contact_id)
        mark = (
            await conn.execute(
                select(campaign_recipients.c.unsubscribed_at).where(
                    campaign_recipients.c.id == ref.id
                )
            )
        ).scalar_one()
    assert [(h.status, h.method, h.ip) for h in history] == [
        ("unsubscribed", "one_click", "192.0.2.7")
    ]
    assert mark == T0
    [event] = await _events(database, "Unsubscribed")
    assert event["contact_id"] == contact_id and event["source"] == "campaign"
    assert event["properties"]["campaign_id"] == seeded.campaign_id
    assert event["properties"]["variant_id"] == seeded.variant_id
    assert event["properties"]["subject"] == "Spring!"
    assert event["properties"]["method"] == "one_click"


async def test_transactional_unsubscribe_changes_consent_only(database: Database) -> None:
    ref = await seed_transactional(database, "tx@example.com")
    who = await unsubscribe(database, ref, method="unsubscribe_link", ip=None, now=T0)
    assert who is not None and who.campaign_id is None
    assert await _status(database, who.contact_id or 0) == "unsubscribed"
    [event] = await _events(database, "Unsubscribed")
    assert event["properties"]["transactional_id"] == ref.id


async def test_gone_rows_record_nothing(database: Database) -> None:
    seeded = await seed_campaign(database, ["gone@example.com"])
    async with database.write() as conn:
        await conn.execute(delete(campaigns).where(campaigns.c.id == seeded.campaign_id))
    assert (
        await unsubscribe(
            database, seeded.refs["gone@example.com"], method="one_click", ip=None, now=T0
        )
        is None
    )
    assert await unsubscribe(database, Ref("t", 999), method="mailto", ip=None, now=T0) is None
    assert await _events(database, "Unsubscribed") == []


async def test_bad_input_writes_nothing(database: Database) -> None:
    seeded = await seed_campaign(database, ["ip@example.com"])
    ref = seeded.refs["ip@example.com"]
    with pytest.raises(InvalidInput) as caught:
        await unsubscribe(database, ref, method="one_click", ip="not-an-ip", now=T0)
    assert caught.value.field == "ip"
    with pytest.raises(ValueError):
        await unsubscribe(database, ref, method="carrier-pigeon", ip=None, now=T0)
    assert (await stats_row(database, seeded.campaign_id))["unsubscribes"] == 0
    assert await _status(database, seeded.contacts["ip@example.com"]) != "unsubscribed"
