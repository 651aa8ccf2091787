"""customers/redact deletes the named orders' guest events by key prefix: ``_`` and ``%``
in a shop's order id are literal characters, not LIKE wildcards, and case counts (SQLite's
LIKE ignores it) — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from courriel.integrations.apply import redact_customer_applier
from courriel.integrations.webhooks import HookContext
from courriel.marketing.commerce import EventData, append_event
from courriel.storage.db import Database
from courriel.storage.models.marketing import events

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SOURCE = "shopify:main"


async def test_redacted_order_ids_are_not_patterns(database: Database) -> None:
    keys = [
        "order:1_2:placed",
        "order:1x2:placed",
        "order:1%:placed",
        "order:12:placed",
        "order:ab:placed",
    ]
    async with database.write() as conn:
        for key in keys:
            await append_event(
                conn,
                EventData(
                    name="Placed Order",
                    properties={},
                    occurred_at=NOW,
                    source=SOURCE,
                    unique_key=key,
                ),
            )
    apply = redact_customer_applier(None, None, ("1_2", "1%", "AB"))
    ctx = HookContext(integration_id=1, source=SOURCE, headers={}, now=NOW)
    async with database.write() as conn:
        applied = await apply(conn, ctx)
    assert applied.status == "applied"
    async with database.read() as conn:
        left = (await conn.execute(select(events.c.unique_key).order_by(events.c.id))).scalars()
        assert list(left) == ["order:1x2:placed", "order:12:placed", "order:ab:placed"]
