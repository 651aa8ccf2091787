"""Recommendation prefetch for a campaign page: 500 contacts on a 2,000-product shop.

Seeds a fresh SQLite file (and PostgreSQL with ``--pg URL``) with the same deterministic
shop (random.Random(seed)): 2,000 products in 40 categories (5 % archived, 8 % sold out,
10 % with variants), 50,000 contacts, 100,000 orders over a year with 1-4 lines of
Zipf-like popular products, and 200,000 "Viewed Product" events. Then times, median of
``--runs``:
- cold: ``prefetch`` of a 500-contact page with every kind (shop facts read afresh);
- warm: ``Recommender.prefetch`` of another page once the shop facts are cached;
- lookups: three ``recommendations(kind, 3)`` calls per contact of the page (the renderer's
  share), in microseconds per contact.

    .venv/bin/python bench/recommend.py
    .venv/bin/python bench/recommend.py --pg postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from courriel.marketing.recommend import ALL_CALLS, Recommender, prefetch
from courriel.storage.db import Database
from courriel.storage.models.marketing import (
    contacts,
    events,
    order_lines,
    orders,
    product_categories,
    product_variants,
    products,
)
from courriel.testing.databases import PostgresTemplate, SqliteTemplate

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PRODUCTS, CONTACTS, ORDERS, VIEWS, PAGE = 2_000, 50_000, 100_000, 200_000, 500
CHUNK = 20_000
STATUSES = ("placed", "paid", "paid", "fulfilled", "fulfilled", "cancelled", "refunded")


def _catalogue(rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    items, cats, variants = [], [], []
    for p in range(1, PRODUCTS + 1):
        roll = rng.random()
        items.append(
            {
                "id": p,
                "external_id": str(10_000 + p),
                "title": f"Product {p}",
                "url": f"https://shop.example/p/{p}",
                "image_url": f"https://shop.example/i/{p}.jpg",
                "price_minor": rng.randrange(500, 20_000),
                "currency": "EUR",
                "stock": 0 if roll < 0.08 else rng.choice([None, 5, 50]),
                "status": "archived" if rng.random() < 0.05 else "active",
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
        for c in {rng.randrange(40) for _ in range(rng.choice([1, 1, 2]))}:
            cats.append({"product_id": p, "category": f"category-{c}"})
        if rng.random() < 0.1:
            variants += [
                {
                    "product_id": p,
                    "external_id": f"v{v}",
                    "title": f"v{v}",
                    "stock": rng.randrange(3),
                }
                for v in range(3)
            ]
    return {"products": items, "categories": cats, "variants": variants}


def _popular(rng: random.Random) -> int:
    return min(PRODUCTS, int(rng.paretovariate(1.1)))


def _history(rng: random.Random) -> tuple[list[dict[str, Any]], ...]:
    people = [
        {"id": c, "email": f"c{c}@shop.example", "attributes": {}, "created_at": NOW}
        | {"updated_at": NOW}
        for c in range(1, CONTACTS + 1)
    ]
    heads, lines = [], []
    for o in range(1, ORDERS + 1):
        contact = rng.randrange(1, CONTACTS + 1)
        placed = NOW - timedelta(minutes=rng.randrange(365 * 24 * 60))
        status = rng.choice(STATUSES)
        heads.append(
            {"id": o, "external_id": f"o{o}", "contact_id": contact, "currency": "EUR"}
            | {"total_minor": 1000, "discount_codes": [], "status": status}
            | {"placed_at": placed, "updated_at": placed}
        )
        for product in {_popular(rng) for _ in range(rng.randrange(1, 5))}:
            lines.append(
                {
                    "order_id": o,
                    "product_id": product,
                    "title": "x",
                    "quantity": rng.randrange(1, 4),
                }
                | {
                    "price_minor": 1000,
                    "contact_id": contact,
                    "placed_at": placed,
                    "status": status,
                }
            )
    views = [
        {"contact_id": rng.randrange(1, CONTACTS + 1), "name": "Viewed Product"}
        | {"properties": {"ProductID": str(10_000 + _popular(rng)), "Price": 12.5}}
        | {"occurred_at": NOW - timedelta(minutes=rng.randrange(90 * 24 * 60))}
        | {"source": "tracker:shop"}
        for _ in range(VIEWS)
    ]
    return people, heads, lines, views


async def _seed(db: Database, seed: int) -> None:
    rng = random.Random(seed)
    shop = _catalogue(rng)
    people, heads, lines, views = _history(rng)
    tables = [
        (products, shop["products"]),
        (product_categories, shop["categories"]),
        (product_variants, shop["variants"]),
        (contacts, people),
        (orders, heads),
        (order_lines, lines),
        (events, views),
    ]
    for table, rows in tables:
        for start in range(0, len(rows), CHUNK):
            async with db.write() as conn:
                await conn.execute(insert(table), rows[start : start + CHUNK])
    async with db.write() as conn:
        await conn.execute(text("ANALYZE"))


async def _measure(url: str, runs: int, seed: int) -> dict[str, float]:
    db = await Database.open(url)
    try:
        started = time.perf_counter()
        await _seed(db, seed)
        seeded = time.perf_counter() - started
        pages = [list(range(1 + i * PAGE, 1 + (i + 1) * PAGE)) for i in range(runs + 1)]
        cold, warm, lookups = [], [], []
        recommender = Recommender(db, lambda: NOW)
        await recommender.prefetch(pages[-1])
        for page in pages[:runs]:
            async with db.read() as conn:
                t0 = time.perf_counter()
                await prefetch(conn, page, ALL_CALLS, now=NOW)
                cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            book = await recommender.prefetch(page)
            warm.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for contact in page:
                calls = book.for_contact(contact)
                for kind in ("best_sellers", "recently_viewed", "bought_together"):
                    calls(kind, 3)
            lookups.append((time.perf_counter() - t0) / len(page))
        return {
            "seed s": seeded,
            "cold ms": 1000 * statistics.median(cold),
            "warm ms": 1000 * statistics.median(warm),
            "lookups us/contact": 1e6 * statistics.median(lookups),
        }
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="", help="PostgreSQL admin URL (also measure there)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"sqlite": SqliteTemplate(Path(tmp) / "tpl").new_database(Path(tmp))}
        template = PostgresTemplate(args.pg) if args.pg else None
        if template is not None:
            targets["postgresql"] = template.new_database()[0]
        try:
            for name, url in targets.items():
                result = asyncio.run(_measure(url, args.runs, args.seed))
                print(name, "  ".join(f"{k} {v:.1f}" for k, v in result.items()), flush=True)
        finally:
            if template is not None:
                template.destroy()


if __name__ == "__main__":
    main()
