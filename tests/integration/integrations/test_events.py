"""append_event: insert, dedupe on (source, unique_key), validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from courriel.errors import InvalidInput
from courriel.marketing.commerce import EventData, append_event
from courriel.storage.db import Database
from courriel.storage.models.marketing import events

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _event(**overrides: object) -> EventData:
    fields: dict[str, object] = {
        "name": "Viewed Product",
        "properties": {"ProductID": "42", "Price": 12.5},
        "occurred_at": NOW,
        "source": "tracker",
        "unique_key": "view-1",
    }
    fields.update(overrides)
    return EventData(**fields)  # type: ignore[arg-type]


async def _count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


async def test_append_then_replay_is_a_no_op(database: Database) -> None:
    async with database.write() as conn:
        first = await append_event(conn, _event(value=12.5, anonymous_id="anon-1"))
    async with database.write() as conn:
        again = await append_event(conn, _event(properties={"changed": True}))
    assert first is not None and again is None
    async with database.read() as conn:
        row = (await conn.execute(select(events))).one()
    assert row.properties == {"ProductID": "42", "Price": 12.5}
    assert row.value == 12.5 and row.anonymous_id == "anon-1"
    assert row.occurred_at == NOW


async def test_same_key_other_source_and_no_key_are_distinct(database: Database) -> None:
    async with database.write() as conn:
        ids = [
            await append_event(conn, _event()),
            await append_event(conn, _event(source="api")),
            await append_event(conn, _event(unique_key=None)),
            await append_event(conn, _event(unique_key=None)),
        ]
    assert None not in ids and len(set(ids)) == 4
    assert await _count(database) == 4


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"source": "s" * 65}, "source"),
        ({"unique_key": "k" * 129}, "unique_key"),
        ({"value": float("nan")}, "value"),
        ({"properties": {"when": NOW}}, "properties"),
        ({"properties": {"bad": float("inf")}}, "properties"),
    ],
)
async def test_invalid_events_name_the_field(
    database: Database, overrides: dict[str, object], field: str
) -> None:
    async with database.write() as conn:
        with pytest.raises(InvalidInput) as caught:
            await append_event(conn, _event(**overrides))
    assert caught.value.field == field
    assert await _count(database) == 0
