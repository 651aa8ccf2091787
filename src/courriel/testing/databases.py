"""Fresh, migrated, empty databases for tests, on SQLite and PostgreSQL.

Migrating is the slow part, so it happens once per test session: SQLite tests get a
copy of a migrated template file; PostgreSQL tests get ``CREATE DATABASE … TEMPLATE``
of a migrated run template. Names carry a random run id, so that several runs (CI
jobs) can share one PostgreSQL server; everything created is dropped at the end.

These helpers are synchronous (they run their own event loop) so that session-scoped
pytest fixtures can call them outside any test's loop.

A clone of the PostgreSQL template takes ~0.6 s of the server's time; with a thousand
PostgreSQL tests that was a third of the suite. So clones are made ahead by a background
thread (``ahead`` of them, default 2) while the tests run: the server copies the next
database on the other core while this one is used. Each clone is still used by one test
only and dropped after it.
"""

from __future__ import annotations

import asyncio
import queue
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from courriel.storage.db import Database

__all__ = ["PostgresTemplate", "SqliteTemplate", "migrate"]


async def _migrate(url: str) -> None:
    db = await Database.open(url)
    try:
        await db.upgrade()
    finally:
        await db.close()


def migrate(url: str) -> None:
    """Open ``url`` and upgrade it to head (blocking; runs its own event loop)."""
    asyncio.run(_migrate(url))


class SqliteTemplate:
    """A migrated SQLite file that each test copies."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "template.db"
        migrate(f"sqlite:///{self.path}")
        # Closing the last connection checkpoints the WAL into the main file.
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def new_database(self, directory: Path) -> str:
        """Copy the template into ``directory`` and return its URL."""
        target = directory / "courriel.db"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"


class PostgresTemplate:
    """A migrated run template on a PostgreSQL server; tests clone it.

    Args:
        admin_url: any database on the server the user may connect to and that lets
            it create databases (``postgresql://postgres@127.0.0.1:5432/test``).
    """

    def __init__(self, admin_url: str, *, ahead: int = 2) -> None:
        self._url = make_url(admin_url).set(drivername="postgresql")
        self.run_id = uuid.uuid4().hex[:12]
        self.template = f"courriel_tpl_{self.run_id}"
        self._created: set[str] = set()
        self._lock = threading.Lock()  # guards _created (the maker thread adds to it)
        self._admin(f'CREATE DATABASE "{self.template}"')
        self._created.add(self.template)
        migrate(self.url_for(self.template))
        # Clones made ahead: (name, None) or (None, the error the maker met).
        self._ready: queue.Queue[tuple[str | None, BaseException | None]] = queue.Queue(ahead)
        self._stopping = threading.Event()
        self._maker = threading.Thread(target=self._make_ahead, daemon=True, name="pg-clones")
        if ahead > 0:
            self._maker.start()

    def _clone(self) -> str:
        name = f"courriel_t_{self.run_id}_{uuid.uuid4().hex[:8]}"
        with self._lock:
            self._created.add(name)
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def _make_ahead(self) -> None:
        while not self._stopping.is_set():
            try:
                item: tuple[str | None, BaseException | None] = (self._clone(), None)
            except Exception as exc:  # handed to the test that asks next
                item = (None, exc)
            while not self._stopping.is_set():
                try:
                    self._ready.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def url_for(self, name: str) -> str:
        """The URL of database ``name`` on the same server."""
        return self._url.set(database=name).render_as_string(hide_password=False)

    def new_database(self) -> tuple[str, str]:
        """A fresh clone of the template (made ahead when possible); ``(url, name)``."""
        if not self._maker.is_alive():
            name = self._clone()
            return self.url_for(name), name
        made, error = self._ready.get()
        if error is not None or made is None:
            raise RuntimeError(f"cloning the template failed: {error!r}") from error
        return self.url_for(made), made

    def drop(self, name: str) -> None:
        """Drop one database made here (connections to it are ended)."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with self._lock:
            self._created.discard(name)

    def destroy(self) -> None:
        """Stop making clones, then drop every database this template made, itself last."""
        self._stopping.set()
        if self._maker.is_alive():
            self._maker.join()
        with self._lock:
            leftovers = sorted(self._created - {self.template})
        for name in leftovers:
            self.drop(name)
        self.drop(self.template)

    def _admin(self, sql: str) -> None:
        asyncio.run(self._admin_async(sql))

    async def _admin_async(self, sql: str) -> None:
        dsn = self._url.render_as_string(hide_password=False)
        try:
            conn: Any = await asyncpg.connect(dsn)
        except asyncpg.InvalidCatalogNameError:
            # The named database does not exist: use the maintenance database.
            conn = await asyncpg.connect(self.url_for("postgres"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
