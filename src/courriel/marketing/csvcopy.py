"""PostgreSQL statements of a contact import batch: COPY and set-based SQL on asyncpg.

Owns the PostgreSQL side of :mod:`courriel.marketing.csvbatch` (a
:class:`~courriel.marketing.csvbatch.BatchStore`). Every statement runs on the batch
transaction's asyncpg connection, without SQLAlchemy's per-row parameter handling:

- reads take the batch's keys as one array parameter (``= ANY($1)``);
- rows that may conflict (new contacts, and the tags and memberships of existing ones)
  go by binary ``COPY`` into a temporary staging table, then one ``INSERT … SELECT … ON
  CONFLICT DO NOTHING [RETURNING]`` moves them into place: the conflict check is one
  index probe per row whatever the statistics say, and RETURNING tells which addresses
  another transaction inserted first. (Array parameters and ``unnest`` cost the same on
  the server but ~2x the client CPU: asyncpg checks every array element's type.)
- tags, memberships and consent proof of contacts this batch inserted go by ``COPY``
  straight into their tables: nobody else can see those contacts before the commit, so
  no conflict is possible. Nor can their foreign keys fail, so when the session may, that
  COPY runs with ``session_replication_role = replica``, which skips the foreign-key
  triggers (as ``pg_restore --disable-triggers`` does). Each check was a ``SELECT … FOR
  KEY SHARE`` of the parent: it wrote a lock into every new contact's tuple (dirtying its
  page and the WAL) and cost the server more than the row itself. bench/contacts_import.py,
  1,000,000 new rows: 79.6 -> 51.8 s. The one parent this batch did not insert, the list,
  is locked ``FOR KEY SHARE`` once per batch instead, as the check would have, so that it
  cannot be deleted under the memberships; when it is gone already, the COPY runs with the
  checks and fails as it always did. May: a superuser, or a role granted
  ``SET ON PARAMETER session_replication_role`` (PostgreSQL 15+; docs/operations.md);
  asked once per pooled connection. Other roles keep the checks.
- updates stay row by row (asyncpg's pipelined ``executemany``): an ``UPDATE … FROM`` a
  set may be planned as a hash join over the whole contacts table.

Invariants:
- Everything runs inside the caller's transaction (:meth:`Database.run_write`): the
  store's first statement goes through SQLAlchemy, which begins the transaction, and the
  asyncpg calls after it join it, so a failure rolls the whole batch back.
- The batch's reads are planned with their values (``plan_cache_mode`` =
  ``force_custom_plan``, for the reads only). After five runs of a prepared statement
  PostgreSQL may keep a generic plan made while the table was small (a sequential scan):
  each batch then read the whole contacts table (measured: 0.5-1.6 s per 1,000-row SELECT
  at 50,000 contacts). The setting goes back to its default for the writes: forced
  custom plans made every foreign-key check of every inserted row plan its query again
  (measured: 20.8 -> 11.6 s for 100,000 rows, PostgreSQL 15).
- A read takes at most 1,000 keys (:data:`_READ_KEYS`) whatever the batch size: with
  5,000 contact ids, the custom plan of the tags read was a sequential scan of the 2M
  contact_tags rows (110 ms per batch at 1M contacts, against 8 ms for the index scan),
  and the re-import of 1M rows took 57 s instead of 39 s.
- Staging tables are ``TEMP … ON COMMIT DELETE ROWS``: private to the session, empty at
  every commit, created once per pooled connection with the target's column types
  (``CREATE TABLE … AS SELECT … WITH NO DATA``), one per table and column list. The
  connection's ``info`` remembers them; a rollback forgets them (the CREATE may be undone).
- Values arrive converted by the columns' bind processors (:func:`dbutil.binder`), JSON
  as text (SQLAlchemy's asyncpg codecs encode and decode it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.util import await_only

from courriel.marketing.csvbatch import EXISTING_COLUMNS, INSERT_COLUMNS, UPDATE_COLUMNS
from courriel.storage.models.marketing import contact_tags, contacts, list_members, suppressions

__all__ = ["PostgresStore"]

_CONTACT_CONSTANTS = (
    "source",
    "sms_status",
    "order_count",
    "total_spent_minor",
    "created_at",
    "updated_at",
)
_CONSENT_COLUMNS = ("contact_id", "channel", "status", "method", "ip", "detail", "recorded_at")
_MEMBER_COLUMNS = ("list_id", "contact_id", "status", "added_at", "confirmed_at")
_TAG_COLUMNS = ("contact_id", "tag")
_READING = "force_custom_plan"  # plan_cache_mode of the batch's reads
_READ_KEYS = 1000  # keys per read statement
# Keys of the pooled connection's ``info``: the staging tables this session has, and
# whether it may skip the foreign-key checks of rows whose parents it inserted.
_MADE = "courriel_import_stages"
_TRUSTED = "courriel_import_replication_role"
_SESSION = (
    "SELECT current_setting('is_superuser') = 'on', "
    "current_setting('server_version_num')::int, current_setting('session_replication_role')"
)
_MAY_SET_ROLE = "SELECT has_parameter_privilege('session_replication_role', 'SET')"
_SET_ROLE = "SELECT set_config('session_replication_role', $1, true)"  # LOCAL
_PG15 = 150000  # GRANT SET ON PARAMETER exists from PostgreSQL 15 on


def _type(table: Table, name: str, dialect: Dialect) -> str:
    return str(table.c[name].type.compile(dialect=dialect))


def _stage_name(table: Table, columns: Sequence[str]) -> str:
    digest = hashlib.sha1(",".join(columns).encode(), usedforsecurity=False).hexdigest()[:8]
    return f"courriel_stage_{table.name}_{digest}"


@lru_cache(maxsize=8)
def _statements(dialect: Dialect) -> dict[str, str]:
    """The batch's SQL. Names and types come from the table definitions only: no values."""
    constants = ", ".join(
        f"${i + 1}::{_type(contacts, name, dialect)}" for i, name in enumerate(_CONTACT_CONSTANTS)
    )
    listed = ", ".join(INSERT_COLUMNS)
    updates = ", ".join(f"{name} = ${i + 1}" for i, name in enumerate(UPDATE_COLUMNS))

    def ignore(table: Table, columns: Sequence[str], conflict: str) -> str:
        return (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(columns)} FROM {_stage_name(table, columns)} "
            f"ON CONFLICT ({conflict}) DO NOTHING"
        )

    return {
        "forgotten": (
            "SELECT value FROM suppressions WHERE kind = 'hash' "  # noqa: S608
            f"AND value = ANY($1::{_type(suppressions, 'value', dialect)}[])"
        ),
        "existing": (
            f"SELECT {', '.join(EXISTING_COLUMNS)} FROM contacts "  # noqa: S608
            f"WHERE email = ANY($1::{_type(contacts, 'email', dialect)}[])"
        ),
        "tags": "SELECT contact_id, tag FROM contact_tags WHERE contact_id = ANY($1::BIGINT[])",
        "insert_contacts": (
            f"INSERT INTO contacts ({listed}, {', '.join(_CONTACT_CONSTANTS)}) "  # noqa: S608
            f"SELECT {listed}, {constants} FROM {_stage_name(contacts, INSERT_COLUMNS)} "
            "ON CONFLICT (email) DO NOTHING RETURNING email, id"
        ),
        "update_contacts": (
            f"UPDATE contacts SET {updates} WHERE id = ${len(UPDATE_COLUMNS) + 1}"  # noqa: S608
        ),
        "update_statuses": "UPDATE contacts SET email_status = $1, updated_at = $2 WHERE id = $3",
        "insert_tags": ignore(contact_tags, _TAG_COLUMNS, "contact_id, tag"),
        "insert_members": ignore(list_members, _MEMBER_COLUMNS, "list_id, contact_id"),
        "lock_list": "SELECT id FROM lists WHERE id = $1 FOR KEY SHARE",
    }


def _forget_stages(conn: Connection) -> None:
    # A rolled-back transaction may have created a staging table that is gone now.
    conn.connection.info.pop(_MADE, None)


class PostgresStore:
    """A batch's statements on the asyncpg connection of ``conn``'s transaction."""

    reports_skipped = True  # RETURNING gives only the rows inserted

    def __init__(self, conn: Connection) -> None:
        # The first statement of the batch: SQLAlchemy begins the transaction with it.
        conn.exec_driver_sql(f"SET LOCAL plan_cache_mode = {_READING}")
        raw = conn.connection.driver_connection  # the asyncpg connection of this transaction
        assert raw is not None and raw.is_in_transaction()
        self.conn = conn
        self.raw: Any = raw
        self.sql = _statements(conn.dialect)
        self.reading = True  # plan_cache_mode is _READING

    def _plans(self, *, reading: bool) -> None:
        # Custom plans for the reads, the default for the writes (module docstring); LOCAL
        # settings end with the transaction.
        if reading != self.reading:
            mode = _READING if reading else "DEFAULT"
            await_only(self.raw.execute(f"SET LOCAL plan_cache_mode TO {mode}"))
            self.reading = reading

    def _read(self, name: str, keys: Sequence[Any]) -> list[Any]:
        # At most _READ_KEYS keys per statement (module docstring).
        self._plans(reading=True)
        rows: list[Any] = []
        for start in range(0, len(keys), _READ_KEYS):
            chunk = list(keys[start : start + _READ_KEYS])
            rows.extend(await_only(self.raw.fetch(self.sql[name], chunk)))
        return rows

    def _executemany(self, name: str, records: list[tuple[Any, ...]]) -> None:
        self._plans(reading=False)
        await_only(self.raw.executemany(self.sql[name], records))

    def _copy(self, table: str, columns: Sequence[str], records: list[tuple[Any, ...]]) -> None:
        self._plans(reading=False)
        await_only(self.raw.copy_records_to_table(table, records=records, columns=list(columns)))

    def _session_role(self) -> str | None:
        """The session's own ``session_replication_role``, None when the session may not
        set it (asked once per pooled connection, before any change of ours)."""
        info = self.conn.connection.info
        if _TRUSTED not in info:
            superuser, version, current = await_only(self.raw.fetchrow(_SESSION))
            allowed = bool(superuser)
            if not allowed and version >= _PG15:
                allowed = bool(await_only(self.raw.fetchval(_MAY_SET_ROLE)))
            info[_TRUSTED] = str(current) if allowed else None
        role: str | None = info[_TRUSTED]
        return role

    def _copy_fresh(
        self,
        table: str,
        columns: Sequence[str],
        records: list[tuple[Any, ...]],
        *,
        list_id: int | None = None,
    ) -> None:
        """COPY rows whose contacts this transaction inserted, without the foreign-key
        checks when the session may skip them (module docstring). ``list_id``: the list
        the rows also reference, locked first as its checks would have locked it."""
        role = self._session_role()
        if role is None or (list_id is not None and not self._lock_list(list_id)):
            # The checks stay: the session may not skip them, or the list is gone (the
            # checked COPY reports it as it always did).
            self._copy(table, columns, records)
            return
        switch = role != "replica"  # a session in replica skips them already
        if switch:  # transaction-local: a failure rolls it back with the transaction
            await_only(self.raw.fetchval(_SET_ROLE, "replica"))
        self._copy(table, columns, records)
        if switch:
            await_only(self.raw.fetchval(_SET_ROLE, role))

    def _lock_list(self, list_id: int) -> bool:
        """Lock the list ``FOR KEY SHARE``; False when it no longer exists."""
        self._plans(reading=False)
        return await_only(self.raw.fetchval(self.sql["lock_list"], list_id)) is not None

    def _staged(self, table: Table, columns: Sequence[str], records: list[tuple[Any, ...]]) -> None:
        """COPY ``records`` into the (empty) staging table of ``columns`` of ``table``."""
        name = _stage_name(table, columns)
        made = self.conn.connection.info.setdefault(_MADE, set())
        if name not in made:
            if not event.contains(self.conn.engine, "rollback", _forget_stages):
                event.listen(self.conn.engine, "rollback", _forget_stages)
            # Identifiers only, each a column of ``table`` (KeyError otherwise): no values.
            listed = ", ".join(table.c[column].name for column in columns)
            await_only(
                self.raw.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {name} ON COMMIT DELETE ROWS AS "  # noqa: S608
                    f"SELECT {listed} FROM {table.name} WITH NO DATA"
                )
            )
            made.add(name)
        self._copy(name, columns, records)

    def forgotten(self, digests: list[str]) -> set[str]:
        return {row[0] for row in self._read("forgotten", digests)}

    def existing(self, emails: list[str]) -> dict[str, dict[str, Any]]:
        found = (dict(row.items()) for row in self._read("existing", emails))
        return {stored["email"]: stored for stored in found}

    def tags(self, ids: list[int]) -> set[tuple[int, str]]:
        return {(int(row[0]), row[1]) for row in self._read("tags", ids)}

    def insert_contacts(
        self, records: list[tuple[Any, ...]], constants: dict[str, Any]
    ) -> dict[str, int]:
        self._staged(contacts, INSERT_COLUMNS, records)
        shared = [constants[name] for name in _CONTACT_CONSTANTS]
        rows = await_only(self.raw.fetch(self.sql["insert_contacts"], *shared))
        return {row[0]: int(row[1]) for row in rows}

    def update_contacts(self, records: list[tuple[Any, ...]]) -> None:
        self._executemany("update_contacts", records)

    def insert_tags(self, records: list[tuple[int, str]], *, fresh: bool) -> None:
        if fresh:
            self._copy_fresh("contact_tags", _TAG_COLUMNS, list(records))
        else:
            self._staged(contact_tags, _TAG_COLUMNS, list(records))
            await_only(self.raw.execute(self.sql["insert_tags"]))

    def insert_consents(self, records: list[tuple[Any, ...]], *, fresh: bool) -> None:
        if fresh:
            self._copy_fresh("consents", _CONSENT_COLUMNS, records)
        else:
            self._copy("consents", _CONSENT_COLUMNS, records)

    def update_statuses(self, records: list[tuple[Any, ...]]) -> None:
        self._executemany("update_statuses", records)

    def insert_members(self, records: list[tuple[Any, ...]], *, fresh: bool) -> None:
        if fresh:
            self._copy_fresh("list_members", _MEMBER_COLUMNS, records, list_id=records[0][0])
        else:
            self._staged(list_members, _MEMBER_COLUMNS, records)
            await_only(self.raw.execute(self.sql["insert_members"]))
