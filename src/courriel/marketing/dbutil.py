"""Dialect-generic INSERT … ON CONFLICT for connection-level marketing services.

Owns one helper: the dialect's ``insert`` construct chosen from an open connection, so that
functions that run inside a caller's transaction (and so see only an ``AsyncConnection``,
not the :class:`courriel.storage.db.Database`) can write ``ON CONFLICT DO NOTHING`` / ``DO
UPDATE``, which SQLite ≥ 3.24 and PostgreSQL both support with the same SQLAlchemy API.
It belongs with the dialect quirks of ``storage/db.py`` and may move there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

__all__ = ["upsert_insert"]


def upsert_insert(conn: Any, table: Table) -> Any:
    """The dialect's INSERT for ``table`` (supports ``on_conflict_do_nothing/_update``).

    Args:
        conn: an ``AsyncConnection`` or a synchronous ``Connection``.
        table: the target table.
    """
    if conn.dialect.name == "postgresql":
        return pg_insert(table)
    return sqlite_insert(table)
