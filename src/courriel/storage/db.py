"""The database handle: engine, transactions, migrations and every dialect quirk.

Owns: turning a URL into an async engine (aiosqlite or asyncpg), per-connection SQLite
settings, read and write transactions, Alembic upgrades, and mapping driver errors to
:class:`courriel.errors.StorageError`. No other module looks at the dialect except
through the helpers here (``insert_ignore``).

Invariants:
- SQLite runs in WAL mode with foreign keys on and ``synchronous=FULL`` (a commit that
  returns is on disk, so an SMTP 250 may follow it), and a 30 s busy timeout so that
  CLI commands wait for ``courriel serve`` instead of failing.
- On SQLite, ``write()`` starts with ``BEGIN IMMEDIATE``: the writer lock is taken up front,
  so concurrent writers queue on the busy timeout instead of failing on lock upgrade.
- ``upgrade()`` is safe when already at head and when two processes run it at once
  (SQLite: the write lock; PostgreSQL: a transaction-level advisory lock).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Table, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from courriel.errors import StorageError

__all__ = ["Database", "Dialect", "normalize_url", "sqlite_url_for"]

Dialect = Literal["sqlite", "postgresql"]
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
# Prepared statements each pooled SQLite connection keeps (the stdlib default is 128).
# Every statement SQLAlchemy renders with a different number of IN-list or VALUES
# placeholders is a new one, and a prepared statement holds ~25 KB of SQLite heap: at
# 128 the pool's ~20 connections grew the serving process by ~25 MB during a 20,000
# copy campaign (docs/performance.md). A read transaction repeats a handful of hot
# statements, which 16 keeps; the group-commit writer keeps the default.
SQLITE_POOL_STATEMENT_CACHE = 16
# Any constant works: it only has to be the same for every courriel process.
_PG_MIGRATION_LOCK = 0x636F7572  # "cour"
_BEGIN_MODE = "courriel_sqlite_begin"


def sqlite_url_for(data_dir: Path) -> str:
    """The default database URL: ``<data>/courriel.db``."""
    return f"sqlite+aiosqlite:///{(data_dir / 'courriel.db').resolve()}"


def normalize_url(url: str) -> str:
    """Map ``sqlite://`` and ``postgresql://`` URLs (and their drivers) to the async drivers.

    Raises:
        StorageError: the URL does not parse or names another database.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"invalid database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise StorageError(f"unsupported database {backend!r}: use sqlite or postgresql")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook, not the driver, start transactions (the
    # documented pysqlite recipe), so that BEGIN IMMEDIATE is possible.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
        "PRAGMA journal_mode=WAL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA synchronous=FULL",
    ):
        cursor.execute(pragma)
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """An opened database: an async engine plus transaction helpers.

    Use :meth:`open`, never the constructor. ``read()`` and ``write()`` yield an
    ``AsyncConnection`` inside a transaction that commits on normal exit and rolls
    back on an exception; SQLAlchemy errors leave them as ``StorageError``.
    """

    def __init__(self, engine: AsyncEngine, dialect: Dialect) -> None:
        self.engine = engine
        self.dialect: Dialect = dialect
        # SQLite only: the single writer thread and its stdlib-driver engine (run_write).
        self._writer: ThreadPoolExecutor | None = None
        self._sync_engine: Engine | None = None

    @classmethod
    async def open(cls, url: str) -> Database:
        """Create the engine for ``url`` and check that the database answers.

        Raises:
            StorageError: bad URL, unreachable server, unwritable file.
        """
        async_url = normalize_url(url)
        dialect: Dialect = "sqlite" if async_url.startswith("sqlite") else "postgresql"
        # A pool large enough for every concurrent session: connections opened past it
        # would be closed again on return, and reopening one (PRAGMAs, a thread per
        # aiosqlite connection) costs more than the query it serves.
        kwargs: dict[str, Any] = {
            # Errors must never carry bound values (addresses, message data, secrets) into
            # logs or tracebacks; StorageError already drops them from its own message.
            "hide_parameters": True,
            "pool_pre_ping": dialect == "postgresql",
            "pool_size": 16,
            "max_overflow": 16,
        }
        if dialect == "sqlite":
            kwargs["connect_args"] = {
                "timeout": BUSY_TIMEOUT_MS / 1000,
                "cached_statements": SQLITE_POOL_STATEMENT_CACHE,
            }
        engine = create_async_engine(async_url, **kwargs)
        if dialect == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_connect)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        db = cls(engine, dialect)
        try:
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
        except BaseException:
            await engine.dispose()
            raise
        return db

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (a consistent snapshot on both engines)."""
        async with self._transaction("DEFERRED") as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite the write lock is taken at BEGIN."""
        async with self._transaction("IMMEDIATE") as conn:
            yield conn

    @asynccontextmanager
    async def _transaction(self, sqlite_mode: str) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    await conn.execution_options(**{_BEGIN_MODE: sqlite_mode})
                async with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StorageError(f"database error: {_describe(exc)}") from exc
        except OSError as exc:
            raise StorageError(f"database unreachable: {exc}") from exc

    async def upgrade(self) -> None:
        """Apply every Alembic migration up to head; a no-op when already there."""
        async with self.write() as conn:
            if self.dialect == "postgresql":
                # Serialises concurrent upgrades; released at commit.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            await conn.run_sync(_run_alembic_upgrade)

    async def close(self) -> None:
        """Close every pooled connection (and the SQLite writer thread)."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._sync_engine = None
        await self.engine.dispose()

    async def run_write(
        self, work: Callable[[Connection], T], *, prelude: Callable[[], None] | None = None
    ) -> T:
        """Run ``work`` on a synchronous connection inside one write transaction.

        This is the hot path of group commit: on SQLite the whole transaction (BEGIN
        IMMEDIATE, every statement, COMMIT with its fsync) runs in one call on the single
        writer thread, with the stdlib driver, instead of one thread hop per statement
        through aiosqlite. On PostgreSQL it runs through asyncpg like any transaction.

        Args:
            work: the transaction's statements.
            prelude: blocking work (flushing message bodies) that must be done before the
                transaction starts. On SQLite it runs on the writer thread too, just before
                BEGIN: one thread hop per batch instead of two halves the GIL hand-offs
                (measured: 0.4 ms instead of 1.2 ms of CPU per message). On PostgreSQL it
                runs in a worker thread. Never on the event loop.

        Raises:
            StorageError: the database failed; nothing of ``work`` was committed.
        """
        if self.dialect == "postgresql":
            if prelude is not None:
                await asyncio.to_thread(prelude)
            async with self.write() as conn:
                return await conn.run_sync(work)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_thread(), self._sqlite_write, work, prelude)

    def _writer_thread(self) -> ThreadPoolExecutor:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="courriel-sqlite-writer")
            sync_url = self.engine.url.set(drivername="sqlite+pysqlite")
            self._sync_engine = create_engine(sync_url, poolclass=StaticPool, hide_parameters=True)
            event.listen(self._sync_engine, "connect", _sqlite_connect)
            event.listen(self._sync_engine, "begin", _sqlite_begin)
        return self._writer

    def _sqlite_write(
        self, work: Callable[[Connection], T], prelude: Callable[[], None] | None
    ) -> T:
        assert self._sync_engine is not None
        if prelude is not None:
            prelude()
        try:
            with self._sync_engine.connect() as conn:
                conn.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
                with conn.begin():
                    return work(conn)
        except SQLAlchemyError as exc:
            raise StorageError(f"database error: {_describe(exc)}") from exc
        except OSError as exc:
            raise StorageError(f"database unreachable: {exc}") from exc

    @property
    def parallel_writes(self) -> int:
        """How many write transactions are worth having in flight at once.

        SQLite has one writer (a second transaction would only queue behind the first,
        and the batch it carries would be smaller); PostgreSQL takes several.
        """
        return 1 if self.dialect == "sqlite" else 4

    def insert_ignore(self, table: Table) -> Insert:
        """``INSERT`` that does nothing when the primary key exists already."""
        if self.dialect == "postgresql":
            return pg_insert(table).on_conflict_do_nothing()
        return sqlite_insert(table).on_conflict_do_nothing()


def _run_alembic_upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py runs on this connection (and inside its transaction) instead of its own.
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _describe(exc: SQLAlchemyError) -> str:
    # The driver's own message without the SQL statement and parameters.
    orig = getattr(exc, "orig", None)
    return str(orig) if orig is not None else type(exc).__name__
