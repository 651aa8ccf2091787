"""Database: URL handling, migrations, transactions and error mapping."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select, text

from courriel.errors import StorageError
from courriel.storage.db import (
    MIGRATIONS_DIR,
    SQLITE_POOL_STATEMENT_CACHE,
    Database,
    normalize_url,
    sqlite_url_for,
)
from courriel.storage.models import domains, utcnow


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
        ("postgresql://u:p@127.0.0.1/db", "postgresql+asyncpg://u:p@127.0.0.1/db"),
        ("postgresql+asyncpg://u@127.0.0.1/db", "postgresql+asyncpg://u@127.0.0.1/db"),
        ("postgresql+psycopg://u@127.0.0.1/db", "postgresql+asyncpg://u@127.0.0.1/db"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://u@127.0.0.1/db", "not a url"])
def test_normalize_url_rejects(url: str) -> None:
    with pytest.raises(StorageError):
        normalize_url(url)


def test_sqlite_url_for(tmp_path: Path) -> None:
    assert sqlite_url_for(tmp_path) == f"sqlite+aiosqlite:///{tmp_path.resolve()}/courriel.db"


async def test_fresh_file_upgrade_twice_is_noop(tmp_path: Path) -> None:
    db = await Database.open(sqlite_url_for(tmp_path))
    try:
        assert db.dialect == "sqlite"
        await db.upgrade()
        await db.upgrade()
        async with db.read() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            mode = await conn.scalar(text("PRAGMA journal_mode"))
            fks = await conn.scalar(text("PRAGMA foreign_keys"))
            sync = await conn.scalar(text("PRAGMA synchronous"))
        head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
        assert versions == [(head,)]
        assert (mode, fks, sync) == ("wal", 1, 2)
    finally:
        await db.close()


async def test_concurrent_upgrades(db_url: str) -> None:
    # Two handles (as two processes would) upgrading at once must both succeed.
    first, second = await Database.open(db_url), await Database.open(db_url)
    try:
        await asyncio.gather(first.upgrade(), second.upgrade())
        async with first.read() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        await first.close()
        await second.close()


async def test_write_commits_and_rollback_on_error(database: Database) -> None:
    async with database.write() as conn:
        await conn.execute(insert(domains).values(name="a.test", created_at=utcnow()))
    with pytest.raises(RuntimeError):
        async with database.write() as conn:
            await conn.execute(insert(domains).values(name="b.test", created_at=utcnow()))
            raise RuntimeError("abort")
    async with database.read() as conn:
        names = (await conn.scalars(select(domains.c.name))).all()
    assert names == ["a.test"]


async def test_driver_errors_become_storage_error(database: Database) -> None:
    async with database.write() as conn:
        await conn.execute(insert(domains).values(name="a.test", created_at=utcnow()))
    with pytest.raises(StorageError):
        async with database.write() as conn:
            await conn.execute(insert(domains).values(name="a.test", created_at=utcnow()))


async def test_datetimes_come_back_aware(database: Database) -> None:
    now = utcnow()
    async with database.write() as conn:
        await conn.execute(insert(domains).values(name="a.test", created_at=now))
    async with database.read() as conn:
        stored = await conn.scalar(select(domains.c.created_at))
    assert stored == now and stored.tzinfo is not None


async def test_concurrent_writers_wait(database: Database) -> None:
    async def add(i: int) -> None:
        async with database.write() as conn:
            await conn.execute(insert(domains).values(name=f"d{i}.test", created_at=utcnow()))

    await asyncio.gather(*(add(i) for i in range(20)))
    async with database.read() as conn:
        assert len((await conn.scalars(select(domains.c.id))).all()) == 20


async def test_unreachable_postgres_is_storage_error() -> None:
    # Port 1 on loopback: nothing listens there.
    with pytest.raises(StorageError):
        await Database.open("postgresql://postgres@127.0.0.1:1/none")


def _sqlite_heap() -> Callable[[], int]:
    """sqlite3_memory_used() of the library the stdlib driver runs on (skips otherwise)."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("the stdlib sqlite3 module is not linked to a shared libsqlite3")
    lib = ctypes.CDLL(name)
    lib.sqlite3_libversion.restype = ctypes.c_char_p
    if lib.sqlite3_libversion().decode() != sqlite3.sqlite_version:
        pytest.skip("the shared libsqlite3 is not the one the sqlite3 module uses")
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return lambda: int(lib.sqlite3_memory_used())


async def test_pooled_sqlite_connections_keep_few_prepared_statements(tmp_path: Path) -> None:
    # Each distinct statement text (an IN list of another length) is prepared and cached
    # per pooled connection; at the stdlib's 128 the pool grew the serving process by tens
    # of MB during a campaign. Past SQLITE_POOL_STATEMENT_CACHE, older ones are finalised.
    heap = _sqlite_heap()
    db = await Database.open(sqlite_url_for(tmp_path))
    try:
        async with db.read() as conn:

            async def distinct(first: int, count: int) -> None:
                for k in range(first, first + count):
                    await conn.execute(text(f"SELECT {k} AS c{k}"))

            before = heap()
            await distinct(0, SQLITE_POOL_STATEMENT_CACHE)
            full = heap()
            await distinct(SQLITE_POOL_STATEMENT_CACHE, 200)
            after = heap()
    finally:
        await db.close()
    per_statement = (full - before) / SQLITE_POOL_STATEMENT_CACHE
    assert per_statement > 0
    # 200 more distinct statements: at most a few more stay prepared, not 112 (128 - 16).
    assert after - full < 8 * per_statement
