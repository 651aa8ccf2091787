"""A recorder of the SQL statements a database runs, for tests of what a page load reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from courriel.storage.db import Database

__all__ = ["Statements"]


class Statements:
    """Records each statement's SQL text (a ``before_cursor_execute`` listener).

    ``with Statements(db) as seen: ...`` then ``seen.sql`` (the texts, lower case) and
    ``len(seen)``. Only the async engine is watched: the dashboard's reads go through it.
    """

    def __init__(self, database: Database) -> None:
        self.engine = database.engine.sync_engine
        self.sql: list[str] = []

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.sql.append(statement.lower())

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def __len__(self) -> int:
        return len(self.sql)

    def selects(self) -> list[str]:
        """The SELECT statements (a transaction's BEGIN or PRAGMA left out)."""
        return [sql for sql in self.sql if sql.lstrip().startswith(("select", "with"))]

    def touching(self, table: str) -> list[str]:
        """The statements that name ``table``."""
        return [sql for sql in self.sql if table in sql]
