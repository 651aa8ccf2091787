"""Migration 0003 (IMAP): the models match the migrated schema; upgrade keeps old data right."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from argon2 import PasswordHasher
from sqlalchemy import Connection, func, select, text

from courriel.mailstore.service import MailStore
from courriel.storage.blobs import BlobStore
from courriel.storage.db import MIGRATIONS_DIR, Database
from courriel.storage.models import accounts, folders, messages, metadata


def _alembic(connection: Connection, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


def _for_this_dialect(dialect: str) -> Callable[..., bool]:
    """An Alembic include_object filter: skip model indexes made only for another dialect.

    Alembic's comparison ignores ``Index(...).ddl_if(dialect=...)``, so a PostgreSQL-only
    index (ix_contacts_attributes, GIN) would show as missing on SQLite; the migration
    creates it only on PostgreSQL, which is what this comparison then checks.
    """

    def include(obj: object, name: str | None, kind: str, reflected: bool, other: object) -> bool:
        ddl_if = getattr(obj, "_ddl_if", None) if kind == "index" and not reflected else None
        return ddl_if is None or ddl_if.dialect in (None, dialect)

    return include


def _differences(connection: Connection) -> list[object]:
    opts = {"compare_type": True, "include_object": _for_this_dialect(connection.dialect.name)}
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, metadata))


async def test_models_match_the_migrated_schema(database: Database) -> None:
    async with database.read() as conn:
        assert await conn.run_sync(_differences) == []


async def _seed_0002(database: Database) -> None:
    """An account with an INBOX holding two messages, written as schema 0002 knew it."""
    now = "2026-01-01 00:00:00"
    statements = [
        f"INSERT INTO domains (id, name, created_at) VALUES (1, 'example.test', '{now}')",
        "INSERT INTO accounts (id, address, domain_id, password_hash, created_at) "
        f"VALUES (1, 'alice@example.test', 1, 'x', '{now}')",
        "INSERT INTO folders (account_id, name, special_use, uidvalidity, uidnext, "
        "highest_modseq, subscribed) VALUES (1, 'INBOX', NULL, 1000, 3, 2, true)",
        "INSERT INTO folders (account_id, name, special_use, uidvalidity, uidnext, "
        "highest_modseq, subscribed) VALUES (1, 'Gone', NULL, 1007, 1, 0, true)",
    ]
    statements += [
        "INSERT INTO messages (folder_id, uid, blob_key, size, internal_date, flags, modseq, "
        "trace_header) SELECT id, "
        f"{uid}, '{'a' * 64}', 10, '{now}', '', {uid}, :trace FROM folders WHERE name = 'INBOX'"
        for uid in (1, 2)
    ]
    async with database.write() as conn:
        for sql in statements:
            await conn.execute(text(sql), {"trace": b""} if ":trace" in sql else {})


async def test_upgrade_from_0002_and_back(
    database: Database, blobs: BlobStore, password_hasher: PasswordHasher
) -> None:
    async with database.write() as conn:
        await conn.run_sync(_alembic, "downgrade", "0002")
    await _seed_0002(database)
    async with database.write() as conn:
        await conn.run_sync(_alembic, "upgrade", "head")
    async with database.read() as conn:
        recent = await conn.scalar(select(folders.c.recent_uid).where(folders.c.name == "INBOX"))
        mark = await conn.scalar(select(accounts.c.last_uidvalidity).where(accounts.c.id == 1))
        count = await conn.scalar(select(func.count()).select_from(messages))
    # Mail that was there before the upgrade is not \Recent; nothing was lost.
    assert (recent, mark, count) == (3, 1007, 2)
    store = MailStore(database, blobs, hasher=password_hasher)
    alice = await store.principal("alice@example.test")
    assert (await store.imap.folder_status(alice, "INBOX")).recent == 0
    # A folder deleted then created again gets a larger UIDVALIDITY than any before.
    await store.imap.delete_folder(alice, "Gone")
    await store.imap.create_folder(alice, "Gone")
    assert (await store.imap.folder_status(alice, "Gone")).uidvalidity == 1008
    # Downgrading keeps the rows too (no table copy of accounts, folders or messages).
    async with database.write() as conn:
        await conn.run_sync(_alembic, "downgrade", "0002")
    async with database.read() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM messages"))
    assert count == 2
