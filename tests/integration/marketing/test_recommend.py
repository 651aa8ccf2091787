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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, insert, update

from courriel.errors import InvalidInput
from courriel.marketing.recommend import ALL_CALLS, KINDS, Recommender, prefetch, recommend
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


# -- a page costs a fixed number of queries -------------------------------------------


class QueryCounter:
    """Counts the statements a database runs (a before_cursor_execute listener)."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine.sync_engine
        self.count = 0

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def __enter__(self) -> QueryCounter:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


async def _crowded_shop(database: Database, size: int) -> list[int]:
    """The shop plus ``size`` contacts, each with an order and two views."""
    people = list(range(100, 100 + size))
    bought = ORDERS + [(c, 1 + c % 7, "paid", {1 + c % 4: 1, 9: 1}) for c in people]
    views = VIEWS + [(c, h, {"ProductID": f"p{1 + (c + h) % 11}"}) for c in people for h in (1, 2)]
    await store_shop(database, PRODUCTS, [ANN, BOB, CID, DAN, EVE, *people], bought, views)
    return people


async def _queries(database: Database, page: list[int], run: Any) -> int:
    async with database.read() as conn:
        with QueryCounter(database) as counter:
            await run(conn, page)
    return counter.count


async def test_prefetch_queries_do_not_grow_with_the_page(database: Database) -> None:
    people = await _crowded_shop(database, 120)

    async def run(conn: Any, page: list[int]) -> None:
        await prefetch(conn, page, ALL_CALLS, now=NOW)

    small = await _queries(database, people[:2], run)
    large = await _queries(database, people, run)
    # Shop: categories, products, best sellers; page: bought, views, last orders; pairs.
    assert small == large == 7


async def test_recommender_reads_the_shop_once_per_ttl(database: Database) -> None:
    people = await _crowded_shop(database, 30)
    clock = FakeClock()
    recommender = Recommender(database, clock, ttl=timedelta(seconds=300))

    async def run(conn: Any, page: list[int]) -> None:
        await recommender.prefetch(page, ALL_CALLS, conn=conn)

    assert await _queries(database, people[:10], run) == 7
    # Same shop: only the page's three queries (and co-purchases of new baskets, if any).
    assert await _queries(database, people[10:], run) <= 4
    assert await _queries(database, people[10:], run) == 3
    (top,) = await recommender.recommend(DAN, "best_sellers", 1)
    async with database.write() as conn:
        await conn.execute(update(products).where(products.c.id == top["id"]).values(stock=0))
    assert await recommender.recommend(DAN, "best_sellers", 1) == [top]  # cached
    clock.now += timedelta(seconds=300)
    (after,) = await recommender.recommend(DAN, "best_sellers", 1)  # reloaded
    assert after["id"] != top["id"]


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


# -- batch == single on random shops --------------------------------------------------

STATUSES = ["active", "active", "active", "draft", "archived", "deleted"]
product_specs = st.fixed_dictionaries(
    {
        "title": st.just("P"),
        "status": st.sampled_from(STATUSES),
        "stock": st.none() | st.sampled_from([0, 2]),
        "categories": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True),
        "variants": st.lists(st.none() | st.sampled_from([0, 1]), max_size=2).map(tuple),
    }
)
shop_orders = st.lists(
    st.tuples(
        st.integers(1, 4),
        st.sampled_from([0.5, 1, 1, 29, 31, 60]),  # equal dates make the id decide
        st.sampled_from(["paid", "fulfilled", "cancelled", "refunded"]),
        st.dictionaries(st.integers(1, 7), st.integers(1, 3), min_size=1, max_size=3),
    ),
    max_size=14,
)
shop_views = st.lists(
    st.tuples(
        st.integers(1, 4),
        st.sampled_from([1, 2, 2, 5]),
        st.one_of(
            st.builds(lambda p: {"ProductID": f"p{p}"}, st.integers(1, 8)),
            st.builds(lambda p: {"URL": f"https://shop.example/{p}"}, st.integers(1, 8)),
            st.just({"ProductID": 3}),
        ),
    ),
    max_size=14,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    specs=st.lists(product_specs, min_size=7, max_size=7),
    bought=shop_orders,
    views=shop_views,
)
async def test_batch_equals_single_on_random_shops(
    database: Database,
    specs: list[dict[str, Any]],
    bought: list[tuple[int, float, str, dict[int, int]]],
    views: list[tuple[int, int, dict[str, Any]]],
) -> None:
    catalogue = {i: s | {"url": f"https://shop.example/{i}"} for i, s in enumerate(specs, 1)}
    catalogue[3]["external_id"] = "3"
    await store_shop(database, catalogue, [1, 2, 3, 4], bought, views)
    async with database.read() as conn:
        book = await prefetch(conn, [4, 3, 2, 1], ALL_CALLS, now=NOW)
        for contact in (1, 2, 3, 4, None):
            for kind in KINDS:
                for n in (1, 3, 7):
                    single = await recommend(conn, contact, kind, n, now=NOW)
                    assert book.for_contact(contact)(kind, n) == single, (contact, kind, n)
                    _check_rules(single, catalogue, bought, contact, n)


def _check_rules(
    picked: list[dict[str, Any]],
    catalogue: dict[int, dict[str, Any]],
    bought: list[tuple[int, float, str, dict[int, int]]],
    contact: int | None,
    n: int,
) -> None:
    """The rules every kind keeps, checked against the drawn shop itself."""
    ids = [p["id"] for p in picked]
    assert len(ids) == len(set(ids)) <= n
    owned = {p for c, _, _, lines in bought if c == contact for p in lines}
    for product_id in ids:
        spec = catalogue[product_id]
        tracked = [v for v in spec["variants"] if v is not None]
        assert spec["status"] == "active" and product_id not in owned
        assert spec["stock"] != 0 and (not tracked or max(tracked) > 0)
