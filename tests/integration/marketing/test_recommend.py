"""Recommendations on a hand-built shop: each kind's exact list, the exclusion rules, fill-up.

The shop (ids are fixed; ``p<id>`` is each product's external id, except the tray's "11"):

====  =======  =========  ====================  =========================================
id    product  category   status / stock        units (30 days; older; cancelled ignored)
====  =======  =========  ====================  =========================================
1     mug      mugs       active                6
2     teapot   tea        active, stock 5       5
3     tea      tea        active                3
4     cup      mugs       active                0 (5 older; 20 in a cancelled order)
5     spoon    kitchen    active, stock 0       10  -> out of stock
6     plate    kitchen    archived              9
7     kettle   tea        deleted               0 (4 older)
8     bowl     kitchen    variants all at 0     8   -> out of stock
9     jar      kitchen,   variants 0 and 3      1
               mugs
10    saucer   mugs       draft                 0
11    tray     kitchen    active                never sold
====  =======  =========  ====================  =========================================

Best sellers are therefore mug, teapot, tea, jar, then cup (sold only before the window).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert

from courriel.errors import InvalidInput
from courriel.marketing.recommend import KINDS, prefetch, recommend
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

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ANN, BOB, CID, DAN, EVE = 1, 2, 3, 4, 5

PRODUCTS: dict[int, dict[str, Any]] = {
    1: {"title": "Mug", "categories": ("mugs",)},
    2: {"title": "Teapot", "categories": ("tea",), "stock": 5},
    3: {"title": "Tea", "categories": ("tea",), "url": "https://shop.example/p/tea"},
    4: {"title": "Cup", "categories": ("mugs",)},
    5: {"title": "Spoon", "categories": ("kitchen",), "stock": 0},
    6: {"title": "Plate", "categories": ("kitchen",), "status": "archived"},
    7: {"title": "Kettle", "categories": ("tea",), "status": "deleted"},
    8: {"title": "Bowl", "categories": ("kitchen",), "variants": (0, 0)},
    9: {"title": "Jar", "categories": ("kitchen", "mugs"), "variants": (0, 3)},
    10: {"title": "Saucer", "categories": ("mugs",), "status": "draft"},
    11: {"title": "Tray", "categories": ("kitchen",), "external_id": "11"},
}

# (contact, days ago, status, {product: quantity})
ORDERS: list[tuple[int, float, str, dict[int, int]]] = [
    (EVE, 2, "paid", {1: 3, 3: 1}),
    (EVE, 3, "paid", {2: 2, 3: 2}),
    (EVE, 4, "fulfilled", {9: 1, 1: 1}),
    (EVE, 5, "paid", {5: 10}),
    (EVE, 5, "paid", {6: 9}),
    (EVE, 6, "cancelled", {4: 20}),
    (EVE, 6, "paid", {8: 8}),
    (EVE, 8, "paid", {1: 1, 2: 2}),
    (EVE, 9, "paid", {1: 1, 2: 1}),
    (EVE, 60, "paid", {4: 5}),
    (EVE, 70, "refunded", {7: 3}),
    (EVE, 70, "paid", {7: 4}),
    (ANN, 40, "paid", {3: 1}),
    (ANN, 1, "paid", {1: 1}),
    (ANN, 0.5, "cancelled", {4: 1}),
    (BOB, 10, "paid", {2: 1}),
]

# (contact, hours ago, properties)
VIEWS: list[tuple[int, int, dict[str, Any]]] = [
    (BOB, 1, {"ProductID": "p4"}),
    (BOB, 2, {"ProductID": "p6"}),
    (BOB, 3, {"URL": "https://shop.example/p/tea"}),
    (BOB, 4, {"ProductID": "p4"}),
    (BOB, 5, {"ProductID": "unknown"}),
    (BOB, 6, {"ProductID": "p2"}),
    (BOB, 7, {"ProductID": 11, "Price": 12.5}),
    (CID, 24, {"ProductID": "p9"}),
    (ANN, 30, {"ProductName": "no id"}),
]


def product_row(product_id: int, spec: dict[str, Any]) -> dict[str, Any]:
    """A products row from a small spec (title, status, stock, url, external_id)."""
    return {
        "id": product_id,
        "external_id": spec.get("external_id", f"p{product_id}"),
        "title": spec["title"],
        "url": spec.get("url"),
        "image_url": f"https://shop.example/i/{product_id}.png",
        "price_minor": 100 * product_id,
        "currency": "EUR",
        "stock": spec.get("stock"),
        "status": spec.get("status", "active"),
        "created_at": NOW,
        "updated_at": NOW,
    }


async def store_shop(
    database: Database,
    specs: dict[int, dict[str, Any]],
    people: list[int],
    bought: list[tuple[int, float, str, dict[int, int]]],
    views: list[tuple[int, int, dict[str, Any]]],
) -> None:
    """Replace the shop's rows with these products, contacts, orders and views."""
    async with database.write() as conn:
        for table in (events, order_lines, orders, product_variants, product_categories):
            await conn.execute(delete(table))
        await conn.execute(delete(products))
        await conn.execute(delete(contacts))
        await conn.execute(insert(products), [product_row(p, s) for p, s in specs.items()])
        cats = [{"product_id": p, "category": c} for p, s in specs.items() for c in s["categories"]]
        if cats:
            await conn.execute(insert(product_categories), cats)
        variants = [
            {"product_id": p, "external_id": f"v{i}", "title": f"v{i}", "stock": stock}
            for p, s in specs.items()
            for i, stock in enumerate(s.get("variants", ()))
        ]
        if variants:
            await conn.execute(insert(product_variants), variants)
        await conn.execute(
            insert(contacts),
            [
                {"id": c, "email": f"c{c}@shop.example", "attributes": {}}
                | {"created_at": NOW, "updated_at": NOW}
                for c in people
            ],
        )
        await _store_orders(conn, bought)
        if views:
            await conn.execute(
                insert(events),
                [
                    {"contact_id": c, "name": "Viewed Product", "properties": props}
                    | {"occurred_at": NOW - timedelta(hours=h), "source": "tracker:shop"}
                    for c, h, props in views
                ],
            )


async def _store_orders(conn: Any, bought: list[tuple[int, float, str, dict[int, int]]]) -> None:
    for number, (contact, days, status, lines) in enumerate(bought, start=1):
        placed = NOW - timedelta(days=days)
        await conn.execute(
            insert(orders).values(
                id=number,
                external_id=f"o{number}",
                contact_id=contact,
                currency="EUR",
                total_minor=100,
                discount_codes=[],
                status=status,
                placed_at=placed,
                updated_at=placed,
            )
        )
        copies = {"contact_id": contact, "placed_at": placed, "status": status, "order_id": number}
        await conn.execute(
            insert(order_lines),
            [
                {"product_id": p, "title": f"P{p}", "quantity": q, "price_minor": 100} | copies
                for p, q in lines.items()
            ],
        )


@pytest.fixture
async def shop(database: Database) -> Database:
    await store_shop(database, PRODUCTS, [ANN, BOB, CID, DAN, EVE], ORDERS, VIEWS)
    return database


async def ids(database: Database, contact: int | None, kind: str, n: int) -> list[int]:
    async with database.read() as conn:
        return [p["id"] for p in await recommend(conn, contact, kind, n, now=NOW)]


@pytest.mark.parametrize(
    ("contact", "kind", "n", "expected"),
    [
        (DAN, "best_sellers", 3, [1, 2, 3]),
        # Only sold, recommendable products: the never-sold tray is not a best seller.
        (DAN, "best_sellers", 10, [1, 2, 3, 9, 4]),
        (None, "best_sellers", 2, [1, 2]),
        # Ann bought mug, tea and (in a cancelled order) cup: never offered again.
        (ANN, "best_sellers", 5, [2, 9]),
        # Views, most recent first, each once: plate is archived, teapot bought, the
        # unknown id skipped; tea is found by its URL and the tray by a numeric id.
        (BOB, "recently_viewed", 3, [4, 3, 11]),
        (BOB, "recently_viewed", 5, [4, 3, 11, 1, 9]),
        # Nothing viewed: filled from best sellers.
        (DAN, "recently_viewed", 2, [1, 2]),
        # Ann's last order (the cancelled one does not count) holds the mug; the teapot
        # shared two orders with it, tea and jar one each (tea is bought).
        (ANN, "bought_together", 3, [2, 9]),
        (ANN, "bought_together", 1, [2]),
        # Bob's teapot: mug twice, tea once; then best sellers.
        (BOB, "bought_together", 3, [1, 3, 9]),
        # Bob: tea (last order) and mugs (last viewed cup); by best seller.
        (BOB, "same_category", 3, [1, 3, 9]),
        (BOB, "same_category", 5, [1, 3, 9, 4]),
        # Cid viewed the jar (kitchen, mugs): no kitchen product sold in stock but the jar.
        (CID, "same_category", 2, [1, 9]),
        (CID, "same_category", 4, [1, 9, 4, 2]),
        (DAN, "same_category", 1, [1]),
    ],
)
async def test_each_kind_exact(
    shop: Database, contact: int | None, kind: str, n: int, expected: list[int]
) -> None:
    assert await ids(shop, contact, kind, n) == expected


async def test_product_dict(shop: Database) -> None:
    async with shop.read() as conn:
        teapot, jar = await recommend(conn, ANN, "bought_together", 3, now=NOW)
    assert teapot["id"] == 2
    assert jar == {
        "id": 9,
        "title": "Jar",
        "url": None,
        "image_url": "https://shop.example/i/9.png",
        "price_minor": 900,
        "currency": "EUR",
        "category": "kitchen",
    }


@pytest.mark.parametrize("kind", KINDS)
async def test_batch_equals_single_on_the_shop(shop: Database, kind: str) -> None:
    async with shop.read() as conn:
        book = await prefetch(conn, [ANN, BOB, CID, DAN, EVE, 99], [(kind, 4)], now=NOW)
        for contact in (ANN, BOB, CID, DAN, EVE, 99, None):
            for n in (1, 4, 8):
                single = await recommend(conn, contact, kind, n, now=NOW)
                assert book.for_contact(contact)(kind, n) == single, (contact, n)


async def test_bad_calls(shop: Database) -> None:
    async with shop.read() as conn:
        with pytest.raises(InvalidInput) as bad_kind:
            await recommend(conn, ANN, "trending", 3, now=NOW)
        assert bad_kind.value.field == "kind"
        for n in (0, 51, True):
            with pytest.raises(InvalidInput) as bad_n:
                await recommend(conn, ANN, "best_sellers", n, now=NOW)
            assert bad_n.value.field == "n"
        book = await prefetch(conn, [ANN], [("best_sellers", 3)], now=NOW)
        with pytest.raises(InvalidInput) as not_fetched:
            book.for_contact(ANN)("recently_viewed", 3)
        assert not_fetched.value.field == "kind"
        with pytest.raises(InvalidInput):
            await prefetch(conn, [ANN], [("nope", 3)], now=NOW)


async def test_lists_are_copies(shop: Database) -> None:
    async with shop.read() as conn:
        book = await prefetch(conn, [DAN], [("best_sellers", 1)], now=NOW)
    first = book.for_contact(DAN)("best_sellers", 1)
    first[0]["title"] = "changed by a template"
    assert book.for_contact(DAN)("best_sellers", 1)[0]["title"] == "Mug"


async def test_young_shop_falls_back_to_all_time(database: Database) -> None:
    specs = {p: PRODUCTS[p] for p in (1, 2, 3)}
    old = [(EVE, 90, "paid", {1: 1}), (EVE, 95, "paid", {3: 4}), (EVE, 99, "paid", {2: 2})]
    await store_shop(database, specs, [EVE, DAN], old, [])
    assert await ids(database, DAN, "best_sellers", 3) == [3, 2, 1]
