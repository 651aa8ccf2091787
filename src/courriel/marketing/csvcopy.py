"""PostgreSQL bulk writes of a contact import batch: COPY into staging tables, then SQL.

Owns the PostgreSQL side of :mod:`courriel.marketing.csvbatch`. SQLAlchemy's executemany
builds and converts each row's parameters in Python and PostgreSQL then runs one INSERT or
UPDATE per row; here the batch goes to the server as one binary ``COPY`` (asyncpg's
``copy_records_to_table``) into a temporary staging table, and one set-based statement
moves it into place: ``INSERT … SELECT … ON CONFLICT DO NOTHING [RETURNING]``, whose
conflict check is one index probe per row whatever the statistics say. The design's
"asyncpg, COPY for bulk loads". Updates stay row by row (see ``csvbatch``): an ``UPDATE …
FROM`` a staging table may be planned as a hash join over the whole target table.

Invariants:
- Everything runs inside the caller's transaction (:meth:`Database.run_write`): the COPY
  uses the same asyncpg connection, after SQLAlchemy has begun the transaction (the batch's
  first statement is a SELECT), so a failure rolls the whole batch back.
- Staging tables are ``TEMP … ON COMMIT DELETE ROWS``: private to the session, empty at
  every commit, created once per pooled connection with the target's column types
  (``CREATE TABLE … AS SELECT … WITH NO DATA``), one per table and column list. The
  connection's ``info`` remembers them; a rollback forgets them (the CREATE may be undone).
- The semantics are those of the executemany path (same conflicts, same values); only the
  transport differs. Dialect quirks: may move to ``storage/db.py`` with the helpers of
  :mod:`courriel.marketing.dbutil`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Table, column, event, select
from sqlalchemy import table as sql_table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import TableClause
from sqlalchemy.util import await_only

__all__ = ["copy_insert", "copy_insert_contacts", "copy_insert_ignore"]

# Key of the pooled connection's ``info``: the staging tables this session has.
_MADE = "courriel_import_stages"


def _stage(conn: Connection, table: Table, columns: Sequence[str]) -> TableClause:
    """The (empty) staging table for ``columns`` of ``table``; created when missing."""
    digest = hashlib.sha1(",".join(columns).encode(), usedforsecurity=False).hexdigest()[:8]
    name = f"courriel_stage_{table.name}_{digest}"
    made = conn.connection.info.setdefault(_MADE, set())
    if name in made:
        return sql_table(name, *(column(name) for name in columns))
    if not event.contains(conn.engine, "rollback", _forget_stages):
        event.listen(conn.engine, "rollback", _forget_stages)
    quote = conn.dialect.identifier_preparer.quote
    # Identifiers only, each a column of ``table`` (KeyError otherwise), quoted: no values.
    listed = ", ".join(quote(table.c[column].name) for column in columns)
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {quote(name)} ON COMMIT DELETE ROWS AS "  # noqa: S608
        f"SELECT {listed} FROM {quote(table.name)} WITH NO DATA"
    )
    made.add(name)
    return sql_table(name, *(column(name) for name in columns))


def _forget_stages(conn: Connection) -> None:
    # A rolled-back transaction may have created a staging table that is gone now.
    conn.connection.info.pop(_MADE, None)


def _records(table: Table, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[Any]:
    """Rows as tuples in column order; JSON values as text (asyncpg's json/jsonb input)."""
    json_columns = {i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)}
    out = []
    for row in rows:
        values = [row[name] for name in columns]
        for index in json_columns:
            values[index] = json.dumps(values[index], ensure_ascii=False, separators=(",", ":"))
        out.append(tuple(values))
    return out


def _copy(conn: Connection, name: str, columns: Sequence[str], records: list[Any]) -> None:
    raw = conn.connection.driver_connection  # the asyncpg connection of this transaction
    # COPY must join the batch's transaction, which SQLAlchemy has begun by now.
    assert raw is not None and raw.is_in_transaction()
    await_only(raw.copy_records_to_table(name, records=records, columns=list(columns)))


def _staged(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> TableClause:
    columns = list(rows[0])
    stage = _stage(conn, table, columns)
    _copy(conn, stage.name, columns, _records(table, columns, rows))
    return stage


def copy_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Append ``rows`` (every row has the same keys) to ``table`` with one COPY."""
    if rows:
        columns = list(rows[0])
        _copy(conn, table.name, columns, _records(table, columns, rows))


def copy_insert_ignore(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *, conflict: Sequence[str]
) -> None:
    """INSERT ``rows`` into ``table``, skipping those that conflict on ``conflict``."""
    if not rows:
        return
    stage = _staged(conn, table, rows)
    statement = pg_insert(table).from_select(list(stage.c.keys()), select(*stage.c))
    conn.execute(statement.on_conflict_do_nothing(index_elements=list(conflict)))


def copy_insert_contacts(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """INSERT new contacts, skipping addresses that exist; returns the inserted ids by address.

    An address missing from the result was inserted by another transaction first.
    """
    if not rows:
        return {}
    stage = _staged(conn, table, rows)
    statement = (
        pg_insert(table)
        .from_select(list(stage.c.keys()), select(*stage.c))
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(table.c.email, table.c.id)
    )
    return {email: int(contact_id) for email, contact_id in conn.execute(statement)}
