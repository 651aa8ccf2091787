"""CSV import on PostgreSQL: racing another writer of the same address (SQLite has one
writer), and the statistics it refreshes as the tables grow.

The batch reads its contacts, then inserts the new ones with ON CONFLICT DO NOTHING. When
another transaction inserts one of those addresses in between, the row's fields must be
merged into the winner's contact as an update, and counted as one, not silently dropped.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from courriel.marketing import csvio
from courriel.marketing.consent import consent_history
from courriel.marketing.contacts import find_contact_id, get_contact, upsert_contact
from courriel.marketing.csvio import import_contacts
from courriel.marketing.types import ContactData
from courriel.storage.db import Database

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

# An INSERT of the import blocked on the other transaction's uncommitted unique key.
_BLOCKED = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO contacts%'"
)


async def _import_blocked(database: Database, task: asyncio.Task[object]) -> None:
    # Polls PostgreSQL's own view of the wait until the import's INSERT waits on the lock.
    while not task.done():
        async with database.read() as conn:
            if (await conn.execute(_BLOCKED)).scalar_one():
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the import finished without waiting: {task.result()!r}")


async def test_row_that_loses_the_insert_race_is_merged(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite runs each batch under BEGIN IMMEDIATE: no other writer in between")
    csv_text = (
        "email,first_name,city,tags,plan\n"
        "ana@example.com,Ana,Lyon,vip,gold\n"
        "bob@example.com,Bob,,,\n"
    )
    async with database.write() as conn:
        await upsert_contact(conn, ContactData(email="ana@example.com", last_name="Martin"), now=T0)
        task = asyncio.ensure_future(
            import_contacts(database, io.StringIO(csv_text), consent="subscribed", now=T0)
        )
        await _import_blocked(database, task)
    # The other transaction committed: the import's INSERT skipped Ana's row.
    report = await task
    assert (report.imported, report.updated, report.errors) == (1, 1, [])
    async with database.read() as conn:
        ana_id = await find_contact_id(conn, "ana@example.com")
        assert ana_id is not None
        ana = await get_contact(conn, ana_id)
        history = await consent_history(conn, ana_id)
    assert (ana.first_name, ana.last_name, ana.city) == ("Ana", "Martin", "Lyon")
    assert ana.tags == ("vip",) and ana.attributes == {"plan": "gold"}
    assert ana.email_status == "subscribed" and [r.status for r in history] == ["subscribed"]


async def test_import_analyzes_the_tables_it_grows(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite's planner needs no statistics to use the indexes here")
    monkeypatch.setattr(csvio, "ANALYZE_FIRST", 2)
    csv_text = "email,tags\n" + "".join(f"c{i}@example.com,t{i}\n" for i in range(3))
    report = await import_contacts(database, io.StringIO(csv_text), list_name="L", now=T0)
    assert report.imported == 3
    async with database.read() as conn:
        analyzed = (
            await conn.execute(
                text(
                    "SELECT relname FROM pg_stat_user_tables "
                    "WHERE last_analyze IS NOT NULL ORDER BY relname"
                )
            )
        ).scalars()
        assert list(analyzed) == ["contact_tags", "contacts", "list_members"]


async def test_address_repeated_across_batches_keeps_file_order(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two-row batches, an address repeated across them: the file's last value wins, also
    # while an earlier batch with the address is still being written (both engines).
    monkeypatch.setattr(csvio, "BATCH", 2)
    lines = [f"c{i}@example.com,first{i},\n" for i in range(8)]
    lines += ["c1@example.com,again,Lyon\n", "c6@example.com,,Paris\n", "c1@example.com,last,\n"]
    report = await import_contacts(
        database, io.StringIO("email,first_name,city\n" + "".join(lines)), now=T0
    )
    assert (report.imported, report.errors) == (8, [])
    async with database.read() as conn:
        c1 = await find_contact_id(conn, "c1@example.com")
        c6 = await find_contact_id(conn, "c6@example.com")
        assert c1 is not None and c6 is not None
        first = await get_contact(conn, c1)
        sixth = await get_contact(conn, c6)
    assert (first.first_name, first.city) == ("last", "Lyon")
    assert (sixth.first_name, sixth.city) == ("first6", "Paris")
