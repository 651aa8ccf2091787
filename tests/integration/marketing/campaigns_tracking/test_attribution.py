"""Revenue attribution: the window's edges, last click wins, refunds, cancellations, replays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from tests.integration.integrations.conftest import Hooks, fixture
from tests.integration.marketing.campaigns_tracking.seed import (
    add_contact,
    seed_campaign,
    seed_transactional,
    stats_row,
)

from courriel.marketing.campaigns.attribution import attribute_order
from courriel.marketing.campaigns.tokens import Ref
from courriel.marketing.campaigns.tracking import record_click
from courriel.marketing.orders import OrderData, RefundData, apply_refund, upsert_order
from courriel.storage.db import Database
from courriel.storage.models.campaigns import order_attributions

PLACED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=5)
URL = "https://shop.test/p/1"


async def _click(db: Database, ref: Ref, at: datetime) -> None:
    await record_click(db, ref, URL, user_agent=None, ip=None, now=at)


async def _order(db: Database, contact_id: int, external_id: str = "o1", **fields: object) -> int:
    values: dict[str, object] = {
        "integration_id": None,
        "external_id": external_id,
        "contact_id": contact_id,
        "currency": "EUR",
        "total_minor": 10_000,
        "status": "placed",
        "placed_at": PLACED,
        **fields,
    }
    async with db.write() as conn:
        return await upsert_order(
            conn,
            OrderData(**values),
            source="api",
            now=PLACED,
            attribution_window=WINDOW,  # type: ignore[arg-type]
        )


async def _credited(db: Database, campaign_id: int) -> tuple[int, int]:
    row = await stats_row(db, campaign_id)
    return row["orders"], row["revenue_minor"]


async def test_click_exactly_at_the_window_start_counts(database: Database) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    await _click(database, seeded.refs["ann@example.com"], PLACED - WINDOW)
    await _order(database, seeded.contacts["ann@example.com"])
    assert await _credited(database, seeded.campaign_id) == (1, 10_000)


async def test_click_before_the_window_does_not(database: Database) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    await _click(database, seeded.refs["ann@example.com"], PLACED - WINDOW - timedelta(seconds=1))
    await _order(database, seeded.contacts["ann@example.com"])
    assert await _credited(database, seeded.campaign_id) == (0, 0)
    async with database.read() as conn:
        assert (await conn.execute(select(order_attributions))).first() is None


async def test_click_after_the_order_does_not(database: Database) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    await _click(database, seeded.refs["ann@example.com"], PLACED + timedelta(seconds=1))
    await _order(database, seeded.contacts["ann@example.com"])
    assert await _credited(database, seeded.campaign_id) == (0, 0)


async def test_last_click_wins_between_two_campaigns(database: Database) -> None:
    first = await seed_campaign(database, ["ann@example.com"], name="first")
    second = await seed_campaign(database, ["ann@example.com"], name="second")
    await _click(database, first.refs["ann@example.com"], PLACED - timedelta(days=2))
    await _click(database, second.refs["ann@example.com"], PLACED - timedelta(days=1))
    # A later transactional click earns nothing and does not hide the campaign's.
    tx = await seed_transactional(database, "ann@example.com")
    await _click(database, tx, PLACED - timedelta(hours=1))
    await _order(database, first.contacts["ann@example.com"])
    assert await _credited(database, first.campaign_id) == (0, 0)
    assert await _credited(database, second.campaign_id) == (1, 10_000)


async def test_refund_cancel_and_total_change_adjust_revenue(database: Database) -> None:
    seeded = await seed_campaign(database, ["ann@example.com"])
    contact_id = seeded.contacts["ann@example.com"]
    await _click(database, seeded.refs["ann@example.com"], PLACED - timedelta(hours=2))
    order_id = await _order(database, contact_id)
    await _order(database, contact_id)  # a replay
    assert await _credited(database, seeded.campaign_id) == (1, 10_000)
    refund = RefundData(external_id="r1", amount_minor=2_500, created_at=PLACED)
    for _ in range(2):  # the same refund twice counts once
        async with database.write() as conn:
            await apply_refund(conn, order_id, refund, source="api")
    assert await _credited(database, seeded.campaign_id) == (1, 7_500)
    await _order(database, contact_id, total_minor=12_000)  # the shop edited the order
    assert await _credited(database, seeded.campaign_id) == (1, 9_500)
    await _order(database, contact_id, total_minor=12_000, status="cancelled")
    assert await _credited(database, seeded.campaign_id) == (1, 0)
    async with database.write() as conn:
        assert await attribute_order(conn, order_id, window=WINDOW)  # idempotent
    assert await _credited(database, seeded.campaign_id) == (1, 0)


async def test_order_without_contact_or_click(database: Database) -> None:
    contact_id = await add_contact(database, "nobody@example.com")
    order_id = await _order(database, contact_id)
    async with database.write() as conn:
        assert not await attribute_order(conn, order_id, window=WINDOW)
        assert not await attribute_order(conn, 999_999, window=WINDOW)


async def test_shopify_webhooks_attribute_once(hooks: Hooks) -> None:
    db = hooks.db
    seeded = await seed_campaign(db, ["russell.winfield@example.com"])
    placed = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # orders_create.json's created_at
    await _click(db, seeded.refs["russell.winfield@example.com"], placed - timedelta(days=1))
    for _ in range(2):  # a replay with another delivery id
        assert (
            await hooks.shopify("orders/create", fixture("shopify", "orders_create"))
        ).is_success
    assert await _credited(db, seeded.campaign_id) == (1, 23_436)
    for topic in ("orders/paid", "refunds/create", "orders/updated", "refunds/create"):
        name = topic.replace("/", "_")
        assert (await hooks.shopify(topic, fixture("shopify", name))).is_success
    assert await _credited(db, seeded.campaign_id) == (1, 23_436 - 1_500)
