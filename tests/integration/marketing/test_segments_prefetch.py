"""An "opened" engagement condition ignores Apple Mail Privacy Protection prefetches.

Campaign tracking writes a prefetch as "Opened Email" with ``"prefetch": true``
(docs/tracking.md); only real opens make a contact an opener. The SQL compiler and the
reference evaluator must agree on it, on SQLite and PostgreSQL, including the near misses
(``"prefetch": false``, the string ``"true"``, JSON null, no key at all).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.marketing.segments import members, parse_segment
from courriel.marketing.segments.reference import (
    RefContact,
    RefEvent,
    World,
    clear_world,
    evaluate,
    store_world,
)
from courriel.storage.db import Database

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OPENED = {"kind": "engagement", "action": "opened", "within_days": 30}


def _contact(i: int) -> RefContact:
    return RefContact(
        id=i,
        email=f"c{i}@shop.example",
        first_name=None,
        last_name=None,
        source=None,
        country=None,
        postal_code=None,
        attributes={},
        tags=frozenset(),
        email_status="subscribed",
        sms_status="never",
        order_count=0,
        total_spent_minor=0,
        first_order_at=None,
        last_order_at=None,
        created_at=NOW - timedelta(days=60),
    )


def _open(contact_id: int, properties: dict[str, Any], name: str = "Opened Email") -> RefEvent:
    return RefEvent(
        contact_id=contact_id,
        name=name,
        properties={"campaign_id": 1, **properties},
        occurred_at=NOW - timedelta(days=1),
    )


def _world(events: list[RefEvent], n: int) -> World:
    return World(
        contacts=tuple(_contact(i) for i in range(1, n + 1)),
        orders=(),
        events=tuple(events),
        lists={},
        members=(),
        categories={},
    )


async def _both(database: Database, world: World, definition: dict[str, Any]) -> list[int]:
    async with database.write() as conn:
        await clear_world(conn)
        await store_world(conn, world, now=NOW)
    node = parse_segment(definition)
    expected = sorted(evaluate(node, world, now=NOW))
    assert await members(database, node, now=NOW, limit=100) == expected
    return expected


async def test_prefetch_only_contact_is_not_an_opener(database: Database) -> None:
    world = _world(
        [
            _open(1, {"prefetch": True}),  # Apple MPP only: not an opener
            _open(2, {}),  # a real open
            _open(3, {"prefetch": True}),
            _open(3, {"prefetch": False}),  # a real open beside a prefetch
            _open(4, {"prefetch": "true"}),  # a string is not the flag tracking writes
            _open(5, {"prefetch": None}),
        ],
        n=6,
    )
    assert await _both(database, world, OPENED) == [2, 3, 4, 5]


async def test_count_skips_prefetches(database: Database) -> None:
    world = _world(
        [_open(1, {"prefetch": True}), _open(1, {}), _open(2, {}), _open(2, {})],
        n=2,
    )
    assert await _both(database, world, {**OPENED, "count": 2}) == [2]


async def test_clicked_and_plain_event_conditions_are_unchanged(database: Database) -> None:
    world = _world(
        [_open(1, {"prefetch": True}), _open(2, {"prefetch": True}, name="Clicked Email")],
        n=2,
    )
    # A plain event condition still sees every "Opened Email" (the owner may filter).
    plain = {"kind": "event", "name": "Opened Email", "op": "at_least", "count": 1}
    assert await _both(database, world, plain) == [1]
    clicked = {"kind": "engagement", "action": "clicked"}
    assert await _both(database, world, clicked) == [2]
    # Not-an-opener: the prefetch-only contact is in the negation.
    assert await _both(database, world, {"kind": "not", "condition": OPENED}) == [1, 2]


flags = st.sampled_from([True, False, None, "true", 1, 0, "absent"])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    opens=st.lists(st.tuples(st.integers(1, 4), flags), max_size=12),
    count=st.integers(1, 3),
)
async def test_compiler_matches_reference_on_prefetch_flags(
    database: Database, opens: list[tuple[int, Any]], count: int
) -> None:
    events = [_open(c, {} if flag == "absent" else {"prefetch": flag}) for c, flag in opens]
    world = _world(events, n=4)
    got = await _both(database, world, {**OPENED, "count": count})
    real = [c for c, flag in opens if flag is not True]
    assert got == sorted({c for c in real if real.count(c) >= count})
