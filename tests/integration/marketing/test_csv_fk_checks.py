"""CSV import on PostgreSQL: the foreign-key checks that the rows of new contacts skip.

Tags, memberships and consent proof of contacts the batch inserted are COPYed with
``session_replication_role = replica`` when the session may set it (marketing/csvcopy.py).
What shows whether the checks ran: each check locks its parent ``FOR KEY SHARE``, which
writes the locker into the parent tuple's ``xmax``. So a new contact whose children were
checked has ``xmax <> 0`` after the import, and one whose children were not has 0.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from courriel.marketing.csvbatch import BatchRow, BatchTotals, new_values, write_batch
from courriel.marketing.csvio import import_contacts
from courriel.marketing.lists import find_list
from courriel.storage.db import Database

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

CSV = (
    "email,first_name,tags,email_consent\n"
    "ann@example.com,Ann,vip;news,subscribed\n"
    "bob@example.com,Bob,news,\n"
    "cid@example.com,Cid,,unsubscribed\n"
)
_LOCKED = text("SELECT count(*) FROM contacts WHERE xmax::text <> '0'")
_ORPHANS = text(
    "SELECT (SELECT count(*) FROM contact_tags t LEFT JOIN contacts c ON c.id = t.contact_id"
    " WHERE c.id IS NULL)"
    " + (SELECT count(*) FROM consents p LEFT JOIN contacts c ON c.id = p.contact_id"
    " WHERE c.id IS NULL)"
    " + (SELECT count(*) FROM list_members m LEFT JOIN contacts c ON c.id = m.contact_id"
    " LEFT JOIN lists l ON l.id = m.list_id WHERE c.id IS NULL OR l.id IS NULL)"
)
_CHILDREN = text(
    "SELECT (SELECT count(*) FROM contact_tags), (SELECT count(*) FROM list_members),"
    " (SELECT count(*) FROM consents)"
)


@pytest.fixture(params=["postgresql"], ids=["pg"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """PostgreSQL only: SQLite has no triggers to skip."""
    template = request.getfixturevalue("postgres_template")
    url, name = template.new_database()
    yield url
    template.drop(name)


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def plain_role(db_url: str) -> AsyncIterator[str]:
    """A login role that is not a superuser, with the rights the import needs; its URL."""
    role = f"courriel_plain_{uuid.uuid4().hex[:12]}"
    await _admin(
        db_url,
        f"CREATE ROLE {role} LOGIN NOSUPERUSER",
        f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}",
    )
    yield make_url(db_url).set(username=role).render_as_string(hide_password=False)
    await _admin(db_url, f"DROP OWNED BY {role}", f"DROP ROLE {role}")


async def _import(url: str, csv_text: str) -> tuple[int, int]:
    """Import into a fresh connection pool; (contacts locked by a check, orphan children)."""
    db = await Database.open(url)
    try:
        report = await import_contacts(db, io.StringIO(csv_text), list_name="news", now=T0)
        assert report.errors == []
        async with db.read() as conn:
            return (await conn.scalar(_LOCKED)) or 0, (await conn.scalar(_ORPHANS)) or 0
    finally:
        await db.close()


async def test_superuser_skips_the_checks_of_new_contacts_children(db_url: str) -> None:
    # The test server's user is a superuser.
    assert await _import(db_url, CSV) == (0, 0)
    db = await Database.open(db_url)
    try:
        async with db.read() as conn:
            assert tuple((await conn.execute(_CHILDREN)).one()) == (3, 3, 2)
    finally:
        await db.close()


async def test_role_without_the_privilege_keeps_the_checks(db_url: str, plain_role: str) -> None:
    assert await _import(plain_role, CSV) == (3, 0)


async def test_role_granted_the_parameter_skips_them(db_url: str, plain_role: str) -> None:
    role = make_url(plain_role).username
    await _admin(db_url, f"GRANT SET ON PARAMETER session_replication_role TO {role}")
    assert await _import(plain_role, CSV) == (0, 0)


def _row(line: int, email: str) -> BatchRow:
    digest = hashlib.sha256(email.encode()).hexdigest()
    return BatchRow(
        line=line,
        email=email,
        digest=digest,
        attributes={},
        tags=("vip",),
        consent="subscribed",
        values=new_values(email, {}, {}),
    )


def _batch(rows: list[BatchRow], list_id: int) -> Callable[[Connection], BatchTotals]:
    """write_batch of ``rows`` for the list, as a transaction's synchronous work."""
    return lambda sync: write_batch(
        sync, rows, list_id=list_id, consent=None, source="import", now=T0
    )


async def _make_list(db: Database) -> int:
    await import_contacts(db, io.StringIO("email\nfirst@example.com\n"), list_name="l", now=T0)
    async with db.read() as conn:
        found = await find_list(conn, "l")
    assert found is not None
    return found.id


async def test_list_is_locked_while_its_memberships_skip_the_checks(database: Database) -> None:
    list_id = await _make_list(database)
    rows = [_row(2, "ann@example.com"), _row(3, "bob@example.com")]
    async with database.engine.connect() as conn, conn.begin() as transaction:
        totals = await conn.run_sync(_batch(rows, list_id))
        assert totals.imported == 2
        # Deleting the list (FOR UPDATE) must wait for the batch, as with the checks.
        with pytest.raises(asyncpg.LockNotAvailableError):
            await _admin(
                database.engine.url.render_as_string(hide_password=False),
                f"SELECT id FROM lists WHERE id = {list_id} FOR UPDATE NOWAIT",
            )
        await transaction.commit()


async def test_a_deleted_list_fails_the_batch_and_writes_nothing(database: Database) -> None:
    list_id = await _make_list(database)
    async with database.write() as conn:
        await conn.execute(text("DELETE FROM lists WHERE id = :id"), {"id": list_id})
    # The checked COPY's own error, raised by the driver under the raw COPY.
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="list_members"):
        await database.run_write(_batch([_row(2, "ann@example.com")], list_id))
    async with database.read() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM contacts")) == 1
        assert await conn.scalar(_ORPHANS) == 0


async def test_the_sessions_own_replication_role_comes_back(db_url: str) -> None:
    # A database whose sessions start with another role than "origin": the batch sets
    # "replica" for its COPYs, then puts the session's own value back.
    name = make_url(db_url).database
    await _admin(db_url, f'ALTER DATABASE "{name}" SET session_replication_role = local')
    db = await Database.open(db_url)
    try:
        list_id = await _make_list(db)
        async with db.engine.connect() as conn, conn.begin():
            await conn.run_sync(_batch([_row(2, "ann@example.com")], list_id))
            shown = await conn.scalar(text("SHOW session_replication_role"))
        assert shown == "local"
        async with db.read() as conn:
            assert await conn.scalar(_ORPHANS) == 0
            assert await conn.scalar(text("SELECT count(*) FROM list_members")) == 2
    finally:
        await db.close()
