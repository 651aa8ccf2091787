"""A freeze cut short by a crash, then paused and resumed, is finished before sending on.

The bug: ``resume`` went to ``sending`` whenever ``started_at`` was set, and the sender
then sent to the contacts frozen so far only; the others never got the campaign.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.marketing.campaigns.audience import freeze, freeze_unfinished
from courriel.marketing.campaigns.service import (
    create_campaign,
    get_campaign,
    pause,
    progress,
    resume,
    send_campaign,
)
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients, campaigns

from .conftest import T0, Clock, Crash, RecordingMailer, Shop, make_sender


class CrashingDatabase:
    """The real database, whose process "dies" when it opens its Nth write transaction."""

    def __init__(self, db: Database, crash_at_write: int) -> None:
        self._db = db
        self._left = crash_at_write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        self._left -= 1
        if self._left <= 0:
            raise Crash("during the freeze")
        async with self._db.write() as conn:
            yield conn


async def _crash_mid_freeze(database: Database, shop: Shop) -> int:
    """A campaign whose sender set started_at and froze 2 chunks of 2 contacts, then died."""
    async with database.write() as conn:
        made = await create_campaign(
            conn,
            name="Black Friday",
            variants=[("Hi {name}", shop.template_id)],
            audience=[("list", shop.list_id)],
            from_address="news@shop.example",
            now=T0,
        )
        await send_campaign(conn, made.id, now=T0, shop_address="1 Rue de la Paix, Paris")
        # What the sender's start does first, in its own transaction.
        await conn.execute(update(campaigns).where(campaigns.c.id == made.id).values(started_at=T0))
        started = await get_campaign(conn, made.id)
    with pytest.raises(Crash):
        await freeze(CrashingDatabase(database, crash_at_write=3), started, chunk=2)  # type: ignore[arg-type]
    return made.id


async def test_resume_after_a_crashed_freeze_finishes_it(database: Database, shop: Shop) -> None:
    campaign_id = await _crash_mid_freeze(database, shop)
    async with database.write() as conn:
        assert (await progress(conn, campaign_id)).recipients == 4  # 2 chunks committed
        assert await freeze_unfinished(conn, await get_campaign(conn, campaign_id))
        await pause(conn, campaign_id, now=T0)
        resumed = await resume(conn, campaign_id, now=T0)
    assert resumed.status == "scheduled"

    mailer = RecordingMailer(database)
    sender = make_sender(database, mailer, Clock(), batch=3)
    for _ in range(50):
        if not await sender.step_all():
            break
    async with database.read() as conn:
        done = await progress(conn, campaign_id)
        statuses = (
            await conn.scalars(
                select(campaign_recipients.c.status).where(
                    campaign_recipients.c.campaign_id == campaign_id
                )
            )
        ).all()
    assert done.status == "sent"
    assert done.recipients == done.sent == 7
    assert Counter(statuses) == {"sent": 7}
    # Every contact of the list got exactly one copy.
    assert Counter(m.recipient for m in mailer.sent) == dict.fromkeys(shop.contacts, 1)


async def test_resume_after_a_finished_freeze_keeps_sending(database: Database, shop: Shop) -> None:
    campaign_id = await _crash_mid_freeze(database, shop)
    async with database.read() as conn:
        started = await get_campaign(conn, campaign_id)
    await freeze(database, started, chunk=2)  # the rest of the freeze, then the crash
    async with database.write() as conn:
        assert not await freeze_unfinished(conn, started)
        assert (await progress(conn, campaign_id)).recipients == 7  # counted once each
        await pause(conn, campaign_id, now=T0)
        assert (await resume(conn, campaign_id, now=T0)).status == "sending"
