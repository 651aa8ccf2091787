"""The reference evaluator: segment semantics in plain Python over in-memory data.

Owns: an executable statement of docs/segments.md, written for clarity, not speed. The
property-based test compares the SQL compiler with it on random data and random trees, on
SQLite and PostgreSQL; production code never calls it.

Invariants: evaluation uses no SQL and no shortcut shared with compile.py beyond the three
pure helpers (:func:`fold`, :func:`money_minor`, the engagement event names), so that a bug
in the compiler's logic cannot hide in both. :func:`store_world` / :func:`clear_world`
write the same data into a database, for the tests that compare the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any as AnyValue

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.marketing.segments import tree as t
from courriel.marketing.segments.compile import ENGAGEMENT_EVENTS, fold, money_minor
from courriel.storage.models import marketing as m

__all__ = [
    "RefContact",
    "RefEvent",
    "RefListMember",
    "RefOrder",
    "World",
    "clear_world",
    "evaluate",
    "store_world",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RefContact:
    """A contact row as segments see it."""

    id: int
    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    source: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    postal_code: str | None = None
    time_zone: str | None = None
    attributes: Mapping[str, AnyValue] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    email_status: str = "never"
    sms_status: str = "never"
    order_count: int = 0
    total_spent_minor: int = 0
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RefOrder:
    """An order with the products of its lines."""

    contact_id: int | None
    status: str
    total_minor: int
    refunded_minor: int = 0
    placed_at: datetime
    product_ids: tuple[int | None, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RefEvent:
    """An event."""

    contact_id: int | None
    name: str
    properties: Mapping[str, AnyValue]
    occurred_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RefListMember:
    """A list membership."""

    list_id: int
    contact_id: int
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """Everything a segment can look at."""

    contacts: tuple[RefContact, ...]
    orders: tuple[RefOrder, ...] = ()
    events: tuple[RefEvent, ...] = ()
    lists: Mapping[int, str] = field(default_factory=dict)  # id → name
    members: tuple[RefListMember, ...] = ()
    categories: Mapping[int, frozenset[str]] = field(default_factory=dict)  # product id → names


def evaluate(node: t.Node, world: World, *, now: datetime) -> set[int]:
    """The ids of the contacts of ``world`` that the segment selects at time ``now``."""
    return {c.id for c in world.contacts if _Eval(world, now).holds(node, c)}


_ABSENT = object()


def _json_kind(value: object) -> str:
    if value is _ABSENT:
        return "absent"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _lookup(data: Mapping[str, AnyValue], path: tuple[str, ...]) -> object:
    current: object = data
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return _ABSENT
        current = current[key]
    return current


def _compare(left: float, op: str, right: float) -> bool:
    return {
        "eq": left == right,
        "neq": left != right,
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
    }[op]


def text_holds(value: str | None, op: str, expected: str | None) -> bool:
    """A text operator on a possibly missing text value."""
    if op == "is_set":
        return value is not None and value != ""
    if op == "is_not_set":
        return not text_holds(value, "is_set", None)
    if op == "neq":
        return not text_holds(value, "eq", expected)
    if value is None:
        return False
    assert expected is not None
    have, want = fold(value), fold(expected)
    if op == "eq":
        return have == want
    if op == "contains":
        return want in have
    if op == "starts_with":
        return have.startswith(want)
    return have.endswith(want)


def json_holds(
    data: Mapping[str, AnyValue], path: tuple[str, ...], op: str, value: t.Scalar
) -> bool:
    """An attribute/property operator: the condition's value type picks the comparison."""
    found = _lookup(data, path)
    kind = _json_kind(found)
    if op in ("is_set", "is_not_set"):
        return (kind not in ("absent", "null")) == (op == "is_set")
    if op == "neq":
        return not json_holds(data, path, "eq", value)
    if isinstance(value, bool):
        return kind == "boolean" and found is value
    if isinstance(value, int | float):
        return kind == "number" and _compare(float(found), op, float(value))  # type: ignore[arg-type]
    assert isinstance(value, str)
    return kind == "string" and text_holds(found, op, value)  # type: ignore[arg-type]


class _Eval:
    def __init__(self, world: World, now: datetime) -> None:
        self.world = world
        self.now = now

    def since(self, days: int | None) -> datetime | None:
        return None if days is None else self.now - timedelta(days=days)

    def holds(self, node: t.Node, c: RefContact) -> bool:
        match node:
            case t.All(conditions=items):
                return all(self.holds(n, c) for n in items)
            case t.Any(conditions=items):
                return any(self.holds(n, c) for n in items)
            case t.Not(condition=inner):
                return not self.holds(inner, c)
            case t.Profile() | t.Location():
                return self.column(node, c)
            case t.Attribute():
                return json_holds(c.attributes, (node.key,), node.op, node.value)
            case t.Consent():
                status = c.email_status if node.channel == "email" else c.sms_status
                return status in node.statuses
            case t.Tag():
                return (node.tag in c.tags) == node.present
            case t.ListMember():
                return self.listed(node, c)
            case t.OrderAggregate():
                return self.order(node, c)
            case t.BoughtProduct():
                return self.bought(node, c) != node.negate
            case t.Event() | t.Engagement():
                return self.event(node, c)
        raise TypeError(f"not a segment node: {node!r}")  # pragma: no cover

    def column(self, node: t.Profile | t.Location, c: RefContact) -> bool:
        value = getattr(c, node.field)
        if node.field == "created_at":
            return self.date(value, node.op, node.value)
        if node.op in ("in", "not_in"):
            assert isinstance(node.value, tuple)
            inside = value is not None and fold(value) in {fold(v) for v in node.value}
            return inside == (node.op == "in")
        assert node.value is None or isinstance(node.value, str)
        return text_holds(value, node.op, node.value)

    def date(self, value: datetime | None, op: str, operand: object) -> bool:
        if op in ("is_set", "is_not_set"):
            return (value is not None) == (op == "is_set")
        if value is None:
            return False
        if op in ("before", "after"):
            assert isinstance(operand, datetime)
            return value < operand if op == "before" else value > operand
        assert isinstance(operand, int)
        bound = self.now - timedelta(days=operand)
        return value >= bound if op == "within_days" else value < bound

    def listed(self, node: t.ListMember, c: RefContact) -> bool:
        if isinstance(node.list, int):
            wanted = {node.list}
        else:
            wanted = {i for i, name in self.world.lists.items() if name == node.list}
        return any(
            m.contact_id == c.id and m.list_id in wanted and m.status in node.statuses
            for m in self.world.members
        )

    def counted_orders(self, c: RefContact, days: int | None) -> list[RefOrder]:
        since = self.since(days)
        return [
            o
            for o in self.world.orders
            if o.contact_id == c.id
            and o.status != "cancelled"
            and (since is None or o.placed_at >= since)
        ]

    def order(self, node: t.OrderAggregate, c: RefContact) -> bool:
        if node.metric in ("first_order_date", "last_order_date"):
            return self.date(getattr(c, node.metric.replace("_date", "_at")), node.op, node.value)
        assert not isinstance(node.value, datetime)
        if node.within_days is None:
            count, spent = c.order_count, c.total_spent_minor
        else:
            counted = self.counted_orders(c, node.within_days)
            count = len(counted)
            spent = sum(o.total_minor - o.refunded_minor for o in counted)
        if node.metric == "count":
            return _compare(count, node.op, int(node.value))
        if node.metric == "total_spent":
            return _compare(spent, node.op, money_minor(node.value))
        return count > 0 and _compare(spent, node.op, money_minor(node.value) * count)

    def bought(self, node: t.BoughtProduct, c: RefContact) -> bool:
        for o in self.counted_orders(c, node.within_days):
            for product in o.product_ids:
                if product is None:
                    continue
                if node.product_id is not None and product == node.product_id:
                    return True
                if node.category is not None and node.category in self.world.categories.get(
                    product, frozenset()
                ):
                    return True
        return False

    def event(self, node: t.Event | t.Engagement, c: RefContact) -> bool:
        if isinstance(node, t.Engagement):
            node = t.Event(
                name=ENGAGEMENT_EVENTS[node.action],
                op="at_least",
                count=node.count,
                within_days=node.within_days,
            )
        since = self.since(node.within_days)
        done = sum(
            1
            for e in self.world.events
            if e.contact_id == c.id
            and e.name == node.name
            and (since is None or e.occurred_at >= since)
            and all(json_holds(e.properties, f.path, f.op, f.value) for f in node.filters)
        )
        if node.op == "zero":
            return done == 0
        if node.op == "at_least":
            return done >= node.count
        if node.op == "at_most":
            return done <= node.count
        return done == node.count


# -- the same data in a database (tests only) ---------------------------------------------

_TABLES = (
    m.events,
    m.order_lines,
    m.orders,
    m.product_categories,
    m.products,
    m.list_members,
    m.lists,
    m.contact_tags,
    m.contacts,
)


async def clear_world(conn: AsyncConnection) -> None:
    """Delete every row :func:`store_world` writes (children first)."""
    for table in _TABLES:
        await conn.execute(delete(table))


async def store_world(conn: AsyncConnection, world: World, *, now: datetime) -> None:
    """Insert ``world`` with its own ids (contacts, lists, products are referenced by id)."""
    if world.contacts:
        await conn.execute(m.contacts.insert(), [_contact_row(c, now) for c in world.contacts])
    tags = [{"contact_id": c.id, "tag": tag} for c in world.contacts for tag in sorted(c.tags)]
    lists = [
        {"id": i, "name": n, "double_opt_in": False, "created_at": now}
        for i, n in world.lists.items()
    ]
    members = [
        {"list_id": x.list_id, "contact_id": x.contact_id, "status": x.status, "added_at": now}
        for x in world.members
    ]
    products = sorted(
        set(world.categories) | {p for o in world.orders for p in o.product_ids if p is not None}
    )
    product_rows = [
        {
            "id": p,
            "external_id": str(p),
            "title": f"P{p}",
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
        for p in products
    ]
    categories = [
        {"product_id": p, "category": c}
        for p, cats in world.categories.items()
        for c in sorted(cats)
    ]
    for table, rows in (
        (m.contact_tags, tags),
        (m.lists, lists),
        (m.list_members, members),
        (m.products, product_rows),
        (m.product_categories, categories),
    ):
        if rows:
            await conn.execute(table.insert(), rows)
    await _store_orders(conn, world.orders)
    if world.events:
        await conn.execute(
            m.events.insert(),
            [
                {
                    "contact_id": e.contact_id,
                    "name": e.name,
                    "properties": dict(e.properties),
                    "occurred_at": e.occurred_at,
                    "source": "test",
                }
                for e in world.events
            ],
        )


def _contact_row(c: RefContact, now: datetime) -> dict[str, AnyValue]:
    names = (
        "id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "source",
        "country",
        "region",
        "city",
        "postal_code",
        "time_zone",
        "email_status",
        "sms_status",
        "order_count",
        "total_spent_minor",
        "first_order_at",
        "last_order_at",
        "created_at",
    )
    row = {name: getattr(c, name) for name in names}
    return {**row, "attributes": dict(c.attributes), "updated_at": now}


async def _store_orders(conn: AsyncConnection, orders: tuple[RefOrder, ...]) -> None:
    rows: list[dict[str, AnyValue]] = [
        {
            "id": number,
            "external_id": str(number),
            "contact_id": o.contact_id,
            "currency": "EUR",
            "total_minor": o.total_minor,
            "refunded_minor": o.refunded_minor,
            "discount_codes": [],
            "status": o.status,
            "placed_at": o.placed_at,
            "updated_at": o.placed_at,
        }
        for number, o in enumerate(orders, start=1)
    ]
    # Lines carry copies of their order's contact, date and status, as the writer keeps them.
    lines = [
        {
            "order_id": number,
            "product_id": p,
            "title": "line",
            "quantity": 1,
            "price_minor": 0,
            "contact_id": o.contact_id,
            "placed_at": o.placed_at,
            "status": o.status,
        }
        for number, o in enumerate(orders, start=1)
        for p in o.product_ids
    ]
    for table, batch in ((m.orders, rows), (m.order_lines, lines)):
        if batch:
            await conn.execute(table.insert(), batch)
