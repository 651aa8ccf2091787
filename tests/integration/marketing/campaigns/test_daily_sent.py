"""The campaign sender moves the day's ``sent`` total with each copy, exactly once."""

from __future__ import annotations

from sqlalchemy import select

from courriel.marketing.campaigns.service import create_campaign, send_campaign
from courriel.storage.db import Database
from courriel.storage.models.dashboard import daily_stats

from .conftest import T0, Clock, RecordingMailer, Shop, make_sender


async def test_each_copy_sent_counts_once_on_its_day(database: Database, shop: Shop) -> None:
    async with database.write() as conn:
        made = await create_campaign(
            conn,
            name="Daily",
            variants=[("Hi {name}", shop.template_id)],
            audience=[("list", shop.list_id)],
            from_address="news@shop.example",
            now=T0,
        )
        await send_campaign(conn, made.id, now=T0, shop_address="1 Rue de la Paix, Paris")
    mailer = RecordingMailer(database)
    sender = make_sender(database, mailer, Clock())
    for _ in range(100):
        if not await sender.step_all():
            break
    assert len(mailer.sent) == 7
    async with database.read() as conn:
        rows = (await conn.execute(select(daily_stats))).all()
    assert [(r.day, r.metric, r.value) for r in rows] == [(T0.date(), "sent", 7)]
