"""Each condition kind against hand-computed members, on SQLite and PostgreSQL.

Every case is also checked against the reference evaluator, so the expectations written
here pin both the SQL compiler and the documented semantics (docs/segments.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courriel.marketing.segments import count, members, parse_segment
from courriel.marketing.segments.reference import (
    RefContact,
    RefEvent,
    RefListMember,
    RefOrder,
    World,
    evaluate,
    store_world,
)
from courriel.storage.db import Database

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


WORLD = World(
    contacts=(
        RefContact(
            id=1,
            email="ann@example.com",
            first_name="Ann",
            last_name="Martin",
            phone="+33612345678",
            source="shopify:main",
            country="FR",
            city="Paris",
            attributes={"vip": True, "score": 10, "plan": "Pro"},
            tags=frozenset({"vip"}),
            email_status="subscribed",
            order_count=2,
            total_spent_minor=15000,
            first_order_at=ago(100),
            last_order_at=ago(5),
            created_at=ago(200),
        ),
        RefContact(
            id=2,
            email="BOB@Example.org",
            first_name="bob",
            source="import",
            country="DE",
            attributes={"vip": False, "score": "10", "plan": "basic"},
            email_status="unsubscribed",
            sms_status="subscribed",
            created_at=ago(10),
        ),
        RefContact(
            id=3,
            email="eva@example.com",
            first_name="Éva",
            last_name="",
            attributes={"score": 3.5, "nested": {"a": 1}},
            tags=frozenset({"new"}),
            email_status="pending",
            order_count=1,
            total_spent_minor=2000,
            first_order_at=ago(40),
            last_order_at=ago(40),
            created_at=ago(1),
        ),
        RefContact(
            id=4,
            email="dan_x@shop.test",
            country="fr",
            postal_code="75001",
            time_zone="Europe/Paris",
            attributes={"vip": None},
            order_count=5,
            total_spent_minor=50000,
            first_order_at=ago(300),
            last_order_at=ago(200),
            created_at=ago(400),
        ),
    ),
    orders=(
        RefOrder(
            contact_id=1, status="paid", total_minor=10000, placed_at=ago(5), product_ids=(1,)
        ),
        RefOrder(
            contact_id=1,
            status="refunded",
            total_minor=5000,
            refunded_minor=2000,
            placed_at=ago(20),
            product_ids=(2,),
        ),
        RefOrder(
            contact_id=1, status="cancelled", total_minor=99999, placed_at=ago(2), product_ids=(3,)
        ),
        RefOrder(
            contact_id=3, status="fulfilled", total_minor=2000, placed_at=ago(40), product_ids=(3,)
        ),
        RefOrder(
            contact_id=4, status="paid", total_minor=50000, placed_at=ago(200), product_ids=(1,)
        ),
        RefOrder(
            contact_id=None, status="paid", total_minor=100, placed_at=ago(1), product_ids=(2,)
        ),
    ),
    events=(
        *(
            RefEvent(
                contact_id=1,
                name="Viewed Product",
                properties={"Price": 30, "Item": {"Name": "Boot"}},
                occurred_at=ago(d),
            )
            for d in (1, 4, 9)
        ),
        RefEvent(contact_id=1, name="Opened Email", properties={}, occurred_at=ago(3)),
        RefEvent(contact_id=2, name="Viewed Product", properties={"Price": 5}, occurred_at=ago(2)),
        RefEvent(contact_id=2, name="Clicked Email", properties={}, occurred_at=ago(40)),
        RefEvent(
            contact_id=3, name="Viewed Product", properties={"Price": "30"}, occurred_at=ago(50)
        ),
        RefEvent(contact_id=None, name="Viewed Product", properties={}, occurred_at=ago(1)),
    ),
    lists={1: "News", 2: "VIP"},
    members=(
        RefListMember(list_id=1, contact_id=1, status="subscribed"),
        RefListMember(list_id=1, contact_id=2, status="unsubscribed"),
        RefListMember(list_id=1, contact_id=3, status="pending"),
        RefListMember(list_id=2, contact_id=4, status="subscribed"),
    ),
    categories={1: frozenset({"Shoes"}), 2: frozenset({"Shoes", "Hats"}), 3: frozenset({"Hats"})},
)


def P(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"kind": "profile", "field": field, "op": op, "value": value}


def A(key: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"kind": "attribute", "key": key, "op": op, "value": value}


def L(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"kind": "location", "field": field, "op": op, "value": value}


def Ord(metric: str, op: str, value: Any, days: int | None = None) -> dict[str, Any]:
    return {"kind": "order", "metric": metric, "op": op, "value": value, "within_days": days}


def E(op: str, count: int = 1, days: int | None = None, **extra: Any) -> dict[str, Any]:
    event = {"kind": "event", "name": "Viewed Product", "op": op, "within_days": days, **extra}
    return event if op == "zero" else {**event, "count": count}


CASES: list[tuple[str, dict[str, Any], set[int]]] = [
    # Profile: text operators fold ASCII case only; LIKE wildcards are literal.
    ("ends_with folds case", P("email", "ends_with", "@EXAMPLE.com"), {1, 3}),
    ("contains escapes _", P("email", "contains", "_x"), {4}),
    ("eq folds case", P("first_name", "eq", "BOB"), {2}),
    ("non-ASCII is not folded", P("first_name", "eq", "éva"), set()),
    ("non-ASCII exact", P("first_name", "eq", "Éva"), {3}),
    ("neq includes NULL", P("first_name", "neq", "ann"), {2, 3, 4}),
    ("is_set: not NULL, not empty", P("last_name", "is_set"), {1}),
    ("is_not_set", P("last_name", "is_not_set"), {2, 3, 4}),
    ("starts_with", P("phone", "starts_with", "+33"), {1}),
    ("source eq", P("source", "eq", "IMPORT"), {2}),
    ("created within 10 days (inclusive)", P("created_at", "within_days", 10), {2, 3}),
    ("created before", P("created_at", "before", ago(300).isoformat()), {4}),
    ("created after", P("created_at", "after", ago(10).isoformat()), {3}),
    ("created more than 100 days ago", P("created_at", "more_than_days_ago", 100), {1, 4}),
    # Attributes: the value's JSON type chooses the comparison.
    ("bool eq", A("vip", "eq", True), {1}),
    ("bool neq", A("vip", "neq", True), {2, 3, 4}),
    ("is_set ignores JSON null", A("vip", "is_set"), {1, 2}),
    ("number is not text", A("score", "eq", 10), {1}),
    ("text is not number", A("score", "eq", "10"), {2}),
    ("number gt (int and float)", A("score", "gt", 3), {1, 3}),
    ("number lte", A("score", "lte", 3.5), {3}),
    ("text eq folds", A("plan", "eq", "pro"), {1}),
    ("text contains", A("plan", "contains", "AS"), {2}),
    ("object is set", A("nested", "is_set"), {3}),
    ("missing key", A("nope", "is_not_set"), {1, 2, 3, 4}),
    # Location.
    ("country eq folds", L("country", "eq", "fr"), {1, 4}),
    ("country in", L("country", "in", ["FR", "DE"]), {1, 2, 4}),
    ("country not_in includes NULL", L("country", "not_in", ["fr"]), {2, 3}),
    ("postal code", L("postal_code", "starts_with", "75"), {4}),
    ("country is_not_set", L("country", "is_not_set"), {3}),
    ("time zone", L("time_zone", "eq", "europe/paris"), {4}),
    # Consent, lists, tags.
    (
        "consent",
        {"kind": "consent", "channel": "email", "status": ["subscribed", "pending"]},
        {1, 3},
    ),
    ("sms consent", {"kind": "consent", "channel": "sms", "status": "subscribed"}, {2}),
    ("list by name", {"kind": "list", "list": "News"}, {1}),
    (
        "list by id, statuses",
        {"kind": "list", "list": 1, "status": ["pending", "unsubscribed"]},
        {2, 3},
    ),
    ("unknown list", {"kind": "list", "list": "Nope"}, set()),
    ("tag", {"kind": "tag", "tag": "vip"}, {1}),
    ("tag is exact", {"kind": "tag", "tag": "VIP"}, set()),
    ("no tag", {"kind": "tag", "tag": "vip", "present": False}, {2, 3, 4}),
    # Order aggregates without a window read the contact's columns.
    ("order count", Ord("count", "gte", 2), {1, 4}),
    ("total spent in major units", Ord("total_spent", "gt", 100), {1, 4}),
    ("total spent 150", Ord("total_spent", "gt", 150), {4}),
    ("average", Ord("average_value", "gte", 100), {4}),
    ("average: no orders, no average", Ord("average_value", "lt", 50), {3}),
    # With a window: orders table, cancelled excluded, refunds subtracted.
    ("no order in 30 days", Ord("count", "eq", 0, 30), {2, 3, 4}),
    ("fewer than 2 in 30 days", Ord("count", "lt", 2, 30), {2, 3, 4}),
    ("spent in 30 days (refund subtracted)", Ord("total_spent", "gte", 130, 30), {1}),
    ("spent in 30 days, strict", Ord("total_spent", "gt", 130, 30), set()),
    ("average in 30 days", Ord("average_value", "eq", 65, 30), {1}),
    ("spent less than 10 in 30 days", Ord("total_spent", "lt", 10, 30), {2, 3, 4}),
    ("last order within 30 days", Ord("last_order_date", "within_days", 30), {1}),
    ("first order before", Ord("first_order_date", "before", ago(250).isoformat()), {4}),
    ("lapsed", Ord("last_order_date", "more_than_days_ago", 30), {3, 4}),
    # Bought product / category.
    ("bought product", {"kind": "bought", "product_id": 1}, {1, 4}),
    ("cancelled does not count", {"kind": "bought", "product_id": 3}, {3}),
    ("bought category", {"kind": "bought", "category": "Hats"}, {1, 3}),
    ("bought category in window", {"kind": "bought", "category": "Shoes", "within_days": 10}, {1}),
    ("never bought category", {"kind": "bought", "category": "Hats", "negate": True}, {2, 4}),
    # Events.
    ("at least 3", E("at_least", 3), {1}),
    ("at least 1 in 5 days", E("at_least", 1, 5), {1, 2}),
    ("zero", E("zero"), {4}),
    ("at most 1", E("at_most", 1), {2, 3, 4}),
    ("exactly 1", E("exactly", 1), {2, 3}),
    ("at least 2 in 5 days", E("at_least", 2, 5), {1}),
    (
        "number filter ignores text",
        E("at_least", filters=[{"path": "Price", "op": "gte", "value": 10}]),
        {1},
    ),
    (
        "nested path",
        E("at_least", filters=[{"path": ["Item", "Name"], "op": "eq", "value": "boot"}]),
        {1},
    ),
    (
        "exactly 0 with a filter nobody matches",
        E("exactly", 0, filters=[{"path": "Price", "op": "gt", "value": 100}]),
        {1, 2, 3, 4},
    ),
    # Engagement (events written by campaign tracking).
    ("opened in 7 days", {"kind": "engagement", "action": "opened", "within_days": 7}, {1}),
    ("clicked in 30 days", {"kind": "engagement", "action": "clicked", "within_days": 30}, set()),
    ("clicked ever", {"kind": "engagement", "action": "clicked"}, {2}),
    ("opened twice", {"kind": "engagement", "action": "opened", "count": 2}, set()),
    # Groups.
    ("empty all is everyone", {"kind": "all", "conditions": []}, {1, 2, 3, 4}),
    ("empty any is nobody", {"kind": "any", "conditions": []}, set()),
    (
        "not is two-valued",
        {"kind": "not", "condition": P("first_name", "eq", "ann")},
        {2, 3, 4},
    ),
    (
        "any",
        {"kind": "any", "conditions": [{"kind": "tag", "tag": "vip"}, L("country", "eq", "DE")]},
        {1, 2},
    ),
    (
        "all with not",
        {
            "kind": "all",
            "conditions": [
                Ord("count", "gte", 1),
                {"kind": "not", "condition": {"kind": "bought", "category": "Shoes"}},
            ],
        },
        {3},
    ),
    # Several semi-joins under one OR (one UNION ALL list on PostgreSQL), then AND: the OR
    # must stay grouped ("a OR b OR c AND d" would let the unsubscribed clicker in).
    (
        "any of lists, and a condition",
        {
            "kind": "all",
            "conditions": [
                {
                    "kind": "any",
                    "conditions": [
                        {"kind": "tag", "tag": "new"},
                        {"kind": "engagement", "action": "clicked"},
                        L("country", "eq", "FR"),
                        {"kind": "bought", "product_id": 1},
                    ],
                },
                {
                    "kind": "not",
                    "condition": {
                        "kind": "consent",
                        "channel": "email",
                        "status": ["unsubscribed"],
                    },
                },
            ],
        },
        {1, 3, 4},
    ),
    (
        "not any of lists",
        {
            "kind": "not",
            "condition": {
                "kind": "any",
                "conditions": [
                    {"kind": "engagement", "action": "opened"},
                    {"kind": "engagement", "action": "clicked"},
                ],
            },
        },
        {3, 4},
    ),
]


@pytest.fixture
async def world_db(database: Database) -> Database:
    async with database.write() as conn:
        await store_world(conn, WORLD, now=NOW)
    return database


async def test_each_condition_kind(world_db: Database) -> None:
    for label, definition, expected in CASES:
        node = parse_segment(definition)
        assert evaluate(node, WORLD, now=NOW) == expected, f"reference: {label}"
        found = await members(world_db, node, now=NOW)
        assert set(found) == expected, f"sql: {label}"
        assert found == sorted(found)
        assert await count(world_db, node, now=NOW) == len(expected), label
