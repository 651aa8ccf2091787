"""Saved segments: CRUD with validation, counts and members paged by id cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing.segments import service
from courriel.marketing.segments.reference import RefContact, World, store_world
from courriel.marketing.segments.sqlparts import read_settings
from courriel.marketing.segments.tree import All, Consent
from courriel.storage.db import Database

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SUBSCRIBED = {"kind": "consent", "channel": "email", "status": ["subscribed"]}


def _world(n: int) -> World:
    statuses = ["subscribed", "never", "subscribed", "unsubscribed"]
    return World(
        contacts=tuple(
            RefContact(
                id=i,
                email=f"c{i}@example.com",
                email_status=statuses[i % 4],
                created_at=NOW - timedelta(days=i),
            )
            for i in range(1, n + 1)
        )
    )


@pytest.fixture
async def db(database: Database) -> Database:
    async with database.write() as conn:
        await store_world(conn, _world(25), now=NOW)
    return database


async def test_crud(db: Database) -> None:
    made = await service.create(db, name=" Subscribed ", definition=SUBSCRIBED, now=NOW)
    assert made.name == "Subscribed"
    assert made.definition == Consent(channel="email", statuses=("subscribed",))
    assert await service.get(db, made.id) == made

    with pytest.raises(AlreadyExists):
        await service.create(db, name="Subscribed", definition=SUBSCRIBED)
    other = await service.create(db, name="Everyone", definition={"kind": "all", "conditions": []})
    assert [s.name for s in await service.list(db)] == ["Everyone", "Subscribed"]

    with pytest.raises(AlreadyExists):
        await service.update(db, other.id, name="Subscribed")
    later = NOW + timedelta(hours=1)
    changed = await service.update(db, other.id, name="All", now=later)
    assert (changed.name, changed.definition, changed.updated_at) == (
        "All",
        All(conditions=()),
        later,
    )
    changed = await service.update(db, other.id, definition=SUBSCRIBED)
    assert changed.definition == made.definition and changed.name == "All"

    await service.delete(db, other.id)
    with pytest.raises(NotFound):
        await service.get(db, other.id)
    with pytest.raises(NotFound):
        await service.delete(db, other.id)
    with pytest.raises(NotFound):
        await service.update(db, other.id, name="x")
    with pytest.raises(NotFound):
        await service.count(db, other.id)


async def test_definition_validated_on_save(db: Database) -> None:
    bad = {
        "kind": "all",
        "conditions": [SUBSCRIBED, {"kind": "event", "name": "X", "within_days": -1}],
    }
    with pytest.raises(InvalidInput) as caught:
        await service.create(db, name="Bad", definition=bad)
    assert caught.value.field == "definition/conditions/1/within_days"
    with pytest.raises(InvalidInput) as caught:
        await service.create(db, name="Bad", definition=None)
    assert caught.value.field == "definition"
    with pytest.raises(InvalidInput) as caught:
        await service.create(db, name="", definition=SUBSCRIBED)
    assert caught.value.field == "name"
    made = await service.create(db, name="Good", definition=SUBSCRIBED)
    with pytest.raises(InvalidInput):
        await service.update(db, made.id, definition={"kind": "nope"})
    assert (await service.get(db, made.id)).definition == made.definition
    assert await service.list(db) == [made]


async def test_count_and_members_by_id_and_by_tree(db: Database) -> None:
    made = await service.create(db, name="Subscribed", definition=SUBSCRIBED)
    expected = [i for i in range(1, 26) if i % 4 in (0, 2)]
    assert await service.count(db, made.id, now=NOW) == len(expected)
    assert await service.members(db, made.id, now=NOW) == expected
    assert await service.members(db, made.definition, now=NOW) == expected


@pytest.mark.parametrize("page", [1, 7, 25, 100])
async def test_paging_covers_every_member_once(db: Database, page: int) -> None:
    everyone = All(conditions=())
    seen: list[int] = []
    cursor = 0
    while True:
        ids = await service.members(db, everyone, after_id=cursor, limit=page, now=NOW)
        assert len(ids) <= page
        if not ids:
            break
        seen += ids
        cursor = ids[-1]
    assert seen == list(range(1, 26))


async def test_paging_sees_contacts_added_behind_the_cursor_never_twice(db: Database) -> None:
    first = await service.members(db, All(conditions=()), limit=10, now=NOW)
    async with db.write() as conn:
        await store_world(
            conn,
            World(contacts=(RefContact(id=100, email="late@example.com", created_at=NOW),)),
            now=NOW,
        )
    rest = await service.members(db, All(conditions=()), after_id=first[-1], limit=1000, now=NOW)
    assert first + rest == [*range(1, 26), 100]


async def test_members_rejects_bad_paging(db: Database) -> None:
    with pytest.raises(InvalidInput) as caught:
        await service.members(db, All(conditions=()), limit=0)
    assert caught.value.field == "limit"
    with pytest.raises(InvalidInput) as caught:
        await service.members(db, All(conditions=()), after_id=-1)
    assert caught.value.field == "after_id"


async def test_read_settings_last_only_for_their_read_transaction(db: Database) -> None:
    settings = read_settings(db.dialect)
    if db.dialect == "sqlite":
        assert settings is None
        return
    assert settings is not None
    show = "SELECT current_setting('work_mem'), current_setting('max_parallel_workers_per_gather')"
    async with db.read() as conn:
        before = tuple((await conn.execute(text(show))).one())
    async with db.read() as conn:
        await conn.execute(settings)
        inside = tuple((await conn.execute(text(show))).one())
    assert inside == ("64MB", "0")
    assert await service.count(db, All(conditions=()), now=NOW) == 25
    for _ in range(3):  # whichever pooled connection serves the read
        async with db.read() as conn:
            assert tuple((await conn.execute(text(show))).one()) == before
