"""Deterministic data for bench/campaign.py: a shop, N subscribed contacts, a scheduled campaign.

Everything is drawn from one ``random.Random(seed)``. Contacts, list memberships, products
and orders go in with multi-row INSERTs in big transactions (20,000 rows each) through the
node's own ``Database``, so SQLite and PostgreSQL get the same rows. The template, the
campaign and its scheduling go through the campaign service functions, in-process (the
same calls the CLI makes), before ``courriel serve`` starts: the sender then finds a due
campaign at its first poll.

Recipients are ``rN@dK.test`` (K = N mod domains), so ``bench/delivery.py``'s loopback DNS
and sinks (``_delivery_sink.py``) receive them; the sending domain ``shop.test`` is a local
domain with RSA-2048 and Ed25519 DKIM keys (``ensure_keys``, as ``courriel domain add``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from courriel.app import open_services
from courriel.delivery.dkimkeys import ensure_keys
from courriel.marketing.campaigns.service import create_campaign, send_campaign
from courriel.marketing.templates.service import add_template
from courriel.storage.models.marketing import (
    contacts,
    list_members,
    lists,
    order_lines,
    orders,
    products,
)

__all__ = ["FROM", "SHOP_DOMAIN", "TEMPLATE", "recipient", "seed"]

SHOP_DOMAIN = "shop.test"
FROM = f"news@{SHOP_DOMAIN}"
PRODUCTS, ORDERS, CHUNK = 2_000, 5_000, 20_000
FIRST_NAMES = ["Alice", "Bruno", "Chloé", "Dmitri", "Eve", "Farid", "Greta", "Hugo", "Inès"]

# Personalisation (names, a city, a default) and three best sellers, in MJML like a shop's.
TEMPLATE = """<mjml>
  <mj-head><mj-style>.title { color: #333; font-weight: bold; }</mj-style></mj-head>
  <mj-body>
    <mj-section><mj-column>
      <mj-text css-class="title">Hello {{ contact.first_name | default("there") }}
        {{ contact.last_name | default("") }},</mj-text>
      <mj-text>Our winter picks for {{ contact.city | default("you") }},
        from {{ shop.name }}:</mj-text>
      {% for p in recommendations("best_sellers", 3) %}
      <mj-text><a href="{{ p.url }}">{{ p.title }}</a> {{ p.price_minor }}</mj-text>
      {% endfor %}
      <mj-button href="https://shop.example/sale">Shop the sale</mj-button>
      <mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>
"""


def recipient(n: int, domains: int) -> str:
    """The address of contact ``n`` (1-based)."""
    return f"r{n}@d{n % domains}.test"


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _contacts(
    rng: random.Random, count: int, domains: int, now: datetime
) -> Iterator[dict[str, Any]]:
    for n in range(1, count + 1):
        yield {
            "id": n,
            "email": recipient(n, domains),
            "first_name": rng.choice(FIRST_NAMES),
            "last_name": f"Name{n}",
            "city": rng.choice(["Lyon", "Berlin", None]),
            "attributes": {},
            "source": "import",
            "email_status": "subscribed",
            "sms_status": "never",
            "order_count": 0,
            "total_spent_minor": 0,
            "created_at": now - timedelta(days=30),
            "updated_at": now - timedelta(days=30),
        }


def _members(count: int, now: datetime) -> Iterator[dict[str, Any]]:
    for n in range(1, count + 1):
        yield {"list_id": 1, "contact_id": n, "status": "subscribed", "added_at": now}


def _catalogue(rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": p,
            "external_id": str(10_000 + p),
            "title": f"Product {p}",
            "url": f"https://shop.example/p/{p}",
            "image_url": f"https://shop.example/i/{p}.jpg",
            "price_minor": rng.randrange(500, 20_000),
            "currency": "EUR",
            "stock": rng.choice([None, 5, 50]),
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
        for p in range(1, PRODUCTS + 1)
    ]


def _orders(
    rng: random.Random, count: int, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    heads: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for o in range(1, ORDERS + 1):
        contact = rng.randrange(1, count + 1)
        placed = now - timedelta(minutes=rng.randrange(20 * 24 * 60))
        heads.append(
            {"id": o, "external_id": f"o{o}", "contact_id": contact, "currency": "EUR"}
            | {"total_minor": 2500, "discount_codes": [], "status": "paid"}
            | {"placed_at": placed, "updated_at": placed}
        )
        for product in {min(PRODUCTS, int(rng.paretovariate(1.1))) for _ in range(3)}:
            lines.append(
                {"order_id": o, "product_id": product, "title": f"Product {product}"}
                | {"quantity": 1, "price_minor": 2500, "contact_id": contact}
                | {"placed_at": placed, "status": "paid"}
            )
    return heads, lines


async def seed(
    data_dir: Path, overrides: Mapping[str, str], *, count: int, domains: int, seed_value: int = 6
) -> int:
    """Create the data folder, the shop and the contacts; schedule the campaign; return its id."""
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    async with open_services(data_dir, overrides, environ={}) as services:
        db = services.db
        await services.mailstore.add_domain(SHOP_DOMAIN)
        await ensure_keys(db, SHOP_DOMAIN, today=now.date())
        async with db.write() as conn:
            await conn.execute(insert(lists).values(id=1, name="newsletter", created_at=now))
            await conn.execute(insert(products), _catalogue(rng, now))
        loads = (
            (contacts, _contacts(rng, count, domains, now)),
            (list_members, _members(count, now)),
        )
        for table, rows in loads:
            for chunk in _chunks(rows):
                async with db.write() as conn:
                    await conn.execute(insert(table), chunk)
        heads, lines = _orders(rng, count, now)
        async with db.write() as conn:
            await conn.execute(insert(orders), heads)
            await conn.execute(insert(order_lines), lines)
        async with db.write() as conn:
            await conn.execute(text("ANALYZE"))
        return await _campaign(services, now)


async def _campaign(services: Any, now: datetime) -> int:
    shop_address = services.loaded.config.shop.address
    async with services.db.write() as conn:
        template = await add_template(conn, name="winter", kind="mjml", source=TEMPLATE, now=now)
        campaign = await create_campaign(
            conn,
            name="Winter sale",
            variants=[("Winter picks", template.id)],
            audience=[("list", 1)],
            from_address=FROM,
            from_name="Shop",
            now=now,
        )
        await send_campaign(conn, campaign.id, now=now, shop_address=shop_address)
    return int(campaign.id)
