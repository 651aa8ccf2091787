"""daily_stats on both engines: the upsert itself, and each fact that moves its day's row.

Each fact is recorded through the service that records it (tracking, feedback, attribution,
transactional sending); the row of the fact's UTC day must move, once per message where
the metric is unique, never on a replay.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from tests.integration.marketing.campaigns_feedback.reports import KEY, arf, dsn, store_report, verp
from tests.integration.marketing.campaigns_tracking.seed import (
    T0,
    seed_campaign,
    seed_transactional,
)
from tests.integration.marketing.test_transactional import Mailer, ready, request, settings

from courriel.marketing import dailystats
from courriel.marketing.campaigns.feedback import FeedbackProcessor, record_delivered
from courriel.marketing.campaigns.tracking import record_click, record_open, unsubscribe
from courriel.marketing.campaigns.transactional import send_message
from courriel.marketing.orders import OrderData, RefundData, apply_refund, upsert_order
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models.dashboard import daily_stats

__all__ = ["ready"]  # the transactional fixture, used below by name

DAY = T0.date()
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"


async def day_values(db: Database, day: date = DAY) -> dict[str, int]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(daily_stats.c.metric, daily_stats.c.value).where(daily_stats.c.day == day)
        )
        return {str(r.metric): int(r.value) for r in rows}


async def test_bump_adds_on_the_utc_day(database: Database) -> None:
    late_in_paris = datetime(2026, 3, 2, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    async with database.write() as conn:
        await dailystats.bump_in(conn, "sent", T0, 3)
        await dailystats.bump_in(conn, "sent", T0)
        await dailystats.bump_in(conn, "opened", T0, 0)  # no row for nothing
        await dailystats.bump_in(conn, "sent", late_in_paris)  # 23:30 UTC on March 1st
        await dailystats.bump_in(conn, "revenue_minor", T0 + timedelta(days=1), 1250)
    assert await day_values(database) == {"sent": 5}
    assert await day_values(database, DAY + timedelta(days=1)) == {"revenue_minor": 1250}
    async with database.write() as conn:
        with pytest.raises(ValueError, match="unknown daily metric"):
            await dailystats.bump_in(conn, "sends", T0)


async def test_concurrent_bumps_are_all_counted(database: Database) -> None:
    async def one() -> None:
        async with database.write() as conn:
            await dailystats.bump_in(conn, "delivered", T0)

    await asyncio.gather(*(one() for _ in range(20)))
    assert await day_values(database) == {"delivered": 20}


async def test_read_series_fills_missing_days_with_zeros(database: Database) -> None:
    async with database.write() as conn:
        await dailystats.bump_in(conn, "sent", T0, 7)
        await dailystats.bump_in(conn, "sent", T0 - timedelta(days=29), 2)
        await dailystats.bump_in(conn, "sent", T0 - timedelta(days=30), 100)  # outside
    async with database.read() as conn:
        series = await dailystats.read_series(conn, last_day=DAY, days=30)
    assert len(series.days) == 30 and series.days[-1] == DAY
    assert series.values["sent"][0] == 2 and series.values["sent"][-1] == 7
    assert series.total("sent") == 9 and series.total("opened") == 0


async def test_opens_and_clicks_count_once_per_message(database: Database) -> None:
    seeded = await seed_campaign(database, ["ann@example.com", "bob@example.com"])
    ann, bob = seeded.refs["ann@example.com"], seeded.refs["bob@example.com"]
    receipt = await seed_transactional(database, "cy@example.com")
    for _ in range(3):
        await record_open(database, ann, user_agent=UA, ip="192.0.2.1", now=T0)
    await record_open(database, bob, user_agent="Mozilla/5.0", ip="17.58.1.1", now=T0)  # MPP
    await record_open(database, receipt, user_agent=UA, ip="192.0.2.1", now=T0)
    assert await day_values(database) == {"opened": 2}
    for url in ("https://shop.test/a", "https://shop.test/b"):
        await record_click(database, bob, url, user_agent=UA, ip=None, now=T0)
    await record_click(database, ann, "https://shop.test/a", user_agent=UA, ip=None, now=T0)
    # Bob's click implies his first open (his prefetch was none); two clickers.
    assert await day_values(database) == {"opened": 3, "clicked": 2}


async def test_unsubscribes_count_once_per_copy(database: Database) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    for _ in range(2):
        await unsubscribe(
            database, seeded.refs["ann@example.com"], method="one_click", ip=None, now=T0
        )
    assert await day_values(database) == {"unsubscribed": 1}


async def test_deliveries_count_new_campaign_marks_and_transactional_messages(
    database: Database,
) -> None:
    seeded = await seed_campaign(database, ["ann@example.com", "bob@example.com"])
    receipt = await seed_transactional(database, "cy@example.com")
    refs = [*seeded.refs.values(), receipt]
    await database.run_write(lambda c: record_delivered(c, refs, T0))
    await database.run_write(lambda c: record_delivered(c, [seeded.refs["ann@example.com"]], T0))
    assert await day_values(database) == {"delivered": 3}


def _processor(db: Database, blobs: BlobStore) -> FeedbackProcessor:
    return FeedbackProcessor(db, blobs, KEY, lambda: T0)


async def test_bounces_and_complaints_count_once(database: Database, blobs: BlobStore) -> None:
    seeded = await seed_campaign(database, ["ann@example.com", "bob@example.com"])
    ann, bob = seeded.refs["ann@example.com"], seeded.refs["bob@example.com"]
    hard = dsn("ann@example.com", code=550, enhanced="5.1.1", text="no such user", now=T0)
    for _ in range(2):  # a replayed DSN counts once
        await store_report(database, blobs, verp(ann), hard, T0)
    await store_report(database, blobs, verp(bob), arf("bob@example.com", verp(bob)), T0)
    await store_report(database, blobs, verp(bob), arf("bob@example.com", verp(bob)), T0)
    await _processor(database, blobs).run_once()
    # A complaint also unsubscribes (once).
    assert await day_values(database) == {"bounced": 1, "complained": 1, "unsubscribed": 1}


async def test_revenue_follows_attribution_refunds_and_cancellation(database: Database) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    placed = T0 + timedelta(days=1)
    ann = seeded.refs["ann@example.com"]
    await record_click(database, ann, "https://shop.test/p", user_agent=UA, ip=None, now=T0)

    async def order(**fields: object) -> int:
        values: dict[str, object] = {
            "integration_id": None,
            "external_id": "o1",
            "contact_id": seeded.contacts["ann@example.com"],
            "currency": "EUR",
            "total_minor": 10_000,
            "status": "placed",
            "placed_at": placed,
            **fields,
        }
        async with database.write() as conn:
            return await upsert_order(conn, OrderData(**values), source="api", now=placed)  # type: ignore[arg-type]

    order_id = await order()
    await order()  # a replayed webhook
    async with database.write() as conn:
        refund = RefundData(external_id="r1", amount_minor=2_500, created_at=placed)
        await apply_refund(conn, order_id, refund, source="api")
    later = placed.date()
    assert (await day_values(database, later))["revenue_minor"] == 7_500
    # The refund moved the order's day, not the day it was made.
    await order(status="cancelled")
    assert (await day_values(database, later))["revenue_minor"] == 0


async def test_transactional_messages_count_as_sent(database: Database, ready: None) -> None:
    del ready
    mailer = Mailer(database)
    await send_message(database, mailer, settings(), request(), now=T0)
    await send_message(database, mailer, settings(), request(), now=T0)  # a replay
    await send_message(database, mailer, settings(), request(key="key-2"), now=T0)
    assert await day_values(database) == {"sent": 2}


def test_day_of_a_naive_time_is_its_date() -> None:
    assert dailystats.day_of(datetime(2026, 3, 1, 23, 59)) == date(2026, 3, 1)
    assert dailystats.day_of(datetime(2026, 3, 1, 23, 59, tzinfo=UTC)) == date(2026, 3, 1)
