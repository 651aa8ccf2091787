"""``tracking.attribution_window`` from the configuration reaches orders stored by webhooks.

A Shopify ``orders/create`` webhook goes through the HTTP app built with the window the
config file sets (as the node's listener builds it); the order is attributed to the
campaign clicked before it only when the click falls inside that window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.integration.integrations.conftest import (
    NOW,
    SECRET,
    Hooks,
    fixture,
)
from tests.integration.marketing.campaigns_tracking.seed import seed_campaign, stats_row

from courriel.config.loader import load_config
from courriel.integrations.registry import add_integration
from courriel.marketing.campaigns.tracking import record_click
from courriel.marketing.links import LinkSigner
from courriel.storage.db import Database
from courriel.testing.mail import RecordingMailer
from courriel.web.app import WebServices, create_app
from courriel.web.hooks import ROUTES

PLACED = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # orders_create.json's created_at
BUYER = "russell.winfield@example.com"  # orders_create.json's customer


def _window(tmp_path: Path, setting: str | None) -> timedelta:
    """The window a data folder's courriel.toml sets (None: no setting, the default)."""
    if setting is not None:
        (tmp_path / "courriel.toml").write_text(f'[tracking]\nattribution_window = "{setting}"\n')
    return load_config(tmp_path, environ={}).config.tracking.attribution_window


async def _post_order_after_click(database: Database, window: timedelta, clicked: datetime) -> int:
    """Post the order webhook through an app built with ``window``; the orders credited."""
    shop = await add_integration(database, "shopify", "jsmith", SECRET, now=NOW)
    seeded = await seed_campaign(database, [BUYER])
    await record_click(
        database, seeded.refs[BUYER], "https://shop.test/p/1", user_agent=None, ip=None, now=clicked
    )
    services = WebServices(
        db=database,
        public_url="https://mail.example.test",
        links=LinkSigner(b"k" * 32),
        mailer=RecordingMailer(),
        clock=lambda: NOW,
        attribution_window=window,
    )
    transport = httpx.ASGITransport(app=create_app(services, extra_routes=ROUTES))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        hooks = Hooks(client=client, db=database, shop=shop)
        response = await hooks.shopify("orders/create", fixture("shopify", "orders_create"))
    assert response.status_code == 200, response.text
    return (await stats_row(database, seeded.campaign_id))["orders"]


async def test_config_reads_a_one_day_window(tmp_path: Path) -> None:
    assert _window(tmp_path, "1d") == timedelta(days=1)


@pytest.mark.parametrize(
    ("setting", "hours_before", "credited"),
    [
        ("1d", 36, 0),  # outside a 1-day window
        ("1d", 12, 1),  # inside it
        (None, 36, 1),  # the default 5 days would have counted the same click
    ],
    ids=["1d-outside", "1d-inside", "default-5d"],
)
async def test_webhook_orders_honour_the_configured_window(
    database: Database, tmp_path: Path, setting: str | None, hours_before: int, credited: int
) -> None:
    window = _window(tmp_path, setting)
    clicked = PLACED - timedelta(hours=hours_before)
    assert await _post_order_after_click(database, window, clicked) == credited
