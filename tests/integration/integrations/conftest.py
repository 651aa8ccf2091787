"""Fixtures of the webhook tests: a connected shop, the app, and signed posts of fixtures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from courriel.integrations.registry import Integration, add_integration
from courriel.integrations.webhooks import sign
from courriel.marketing.links import LinkSigner
from courriel.storage.db import Database
from courriel.storage.models.marketing import (
    checkouts,
    consents,
    contacts,
    customers,
    events,
    order_lines,
    orders,
    product_categories,
    product_variants,
    products,
    webhook_receipts,
)
from courriel.testing.mail import RecordingMailer
from courriel.web.app import WebServices, create_app
from courriel.web.hooks import ROUTES

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SECRET = "shpss_0123456789abcdef0123456789abcdef"
TABLES = (
    contacts,
    consents,
    customers,
    orders,
    order_lines,
    products,
    product_variants,
    product_categories,
    checkouts,
    events,
    webhook_receipts,
)


def fixture(kind: str, name: str) -> dict[str, Any]:
    """A payload from tests/fixtures/<kind>/<name>.json."""
    data = json.loads((FIXTURES / kind / f"{name}.json").read_text())
    assert isinstance(data, dict)
    return data


_deliveries = count(1)


@dataclass
class Hooks:
    """Posts signed webhooks to the app, as a shop would."""

    client: httpx.AsyncClient
    db: Database
    shop: Integration

    async def shopify(
        self,
        topic: str,
        payload: dict[str, Any] | bytes,
        *,
        delivery: str | None = None,
        secret: str | None = None,
        signature: str | None = None,
        name: str | None = None,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(secret or SECRET, body)
            if signature is None
            else signature,
            "X-Shopify-Shop-Domain": "jsmith.myshopify.com",
            "X-Shopify-Webhook-Id": delivery or f"b54557e4-{next(_deliveries):04d}",
            "X-Shopify-API-Version": "2025-10",
        }
        if not headers["X-Shopify-Hmac-Sha256"]:
            del headers["X-Shopify-Hmac-Sha256"]
        return await self.client.post(
            f"/hooks/shopify/{name or self.shop.name}", content=body, headers=headers
        )

    async def woo(
        self,
        topic: str,
        payload: dict[str, Any] | bytes,
        *,
        delivery: str | None = None,
        secret: str | None = None,
        name: str = "woo",
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        resource, _, event = topic.partition(".")
        headers = {
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": "https://shop.example.com/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": sign(secret or SECRET, body),
            "X-WC-Webhook-ID": "12",
            "X-WC-Webhook-Delivery-ID": delivery or str(next(_deliveries)),
        }
        return await self.client.post(f"/hooks/woocommerce/{name}", content=body, headers=headers)

    async def counts(self) -> dict[str, int]:
        """The number of rows of every table webhooks write."""
        async with self.db.read() as conn:
            return {
                table.name: int(
                    (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                )
                for table in TABLES
            }

    async def rows(self, table: Any, *order_by: Any) -> list[Any]:
        async with self.db.read() as conn:
            return list((await conn.execute(select(table).order_by(*order_by))).all())


@pytest.fixture
async def hooks(database: Database) -> AsyncIterator[Hooks]:
    shop = await add_integration(database, "shopify", "jsmith", SECRET, now=NOW)
    await add_integration(database, "woocommerce", "woo", SECRET, now=NOW)
    services = WebServices(
        db=database,
        public_url="https://mail.example.test",
        links=LinkSigner(b"k" * 32),
        mailer=RecordingMailer(),
        clock=lambda: NOW,
    )
    app = create_app(services, extra_routes=ROUTES)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Hooks(client=client, db=database, shop=shop)
