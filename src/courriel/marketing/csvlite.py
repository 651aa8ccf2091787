"""SQLite statements of a contact import batch, on the driver's cursor.

Owns the SQLite side of :mod:`courriel.marketing.csvbatch` (a
:class:`~courriel.marketing.csvbatch.BatchStore`). The batch runs on the writer thread
(:meth:`courriel.storage.db.Database.run_write`), where SQLAlchemy's statement execution
and per-row parameter handling cost twice what SQLite itself does for the rows (profile
of bench/contacts_import.py: ~35 of ~55 µs per row); here each statement is one
``sqlite3`` ``executemany`` or ``execute`` of plain tuples.

Invariants:
- Every statement runs on the connection and in the transaction that
  :meth:`Database.run_write` began (``BEGIN IMMEDIATE``): the cursor is that connection's
  own, so a failure rolls the whole batch back.
- The write lock is held from before the batch's first read, so the contacts a batch
  inserts are exactly the addresses its read did not find, and nothing else inserts
  between them: their ids follow the largest id before the INSERT, in order (SQLite's
  rowid rule; ``executemany`` cannot return rows). Should a row not go in, they are read
  back by address instead.
- Values arrive converted by the columns' bind processors (:func:`dbutil.binder`);
  JSON read back goes through the column's result processor, as SQLAlchemy would.
- The statements are the ones SQLAlchemy compiled for the executemany path before
  (same columns, same ON CONFLICT targets).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Connection

from courriel.marketing.csvbatch import EXISTING_COLUMNS, INSERT_COLUMNS, UPDATE_COLUMNS
from courriel.marketing.dbutil import resulter
from courriel.storage.models.marketing import contacts

__all__ = ["SqliteStore"]

# Values per IN (…) list: far below SQLite's limit of 32,766 bound parameters.
_IN_CHUNK = 5000
_MAX_ROWID = 2**63 - 1
_CONTACT_CONSTANTS = (
    "source",
    "sms_status",
    "order_count",
    "total_spent_minor",
    "created_at",
    "updated_at",
)
# The statements are built from the column names above only: no value is ever formatted in.
_COLUMNS = ", ".join(EXISTING_COLUMNS)
_INSERT_CONTACT = (
    f"INSERT INTO contacts ({', '.join((*INSERT_COLUMNS, *_CONTACT_CONSTANTS))}) "  # noqa: S608
    f"VALUES ({', '.join('?' * (len(INSERT_COLUMNS) + len(_CONTACT_CONSTANTS)))}) "
    "ON CONFLICT (email) DO NOTHING"
)
_UPDATE_CONTACT = (
    f"UPDATE contacts SET {', '.join(f'{name} = ?' for name in UPDATE_COLUMNS)} "  # noqa: S608
    "WHERE id = ?"
)
_SELECT_EXISTING = f"SELECT {_COLUMNS} FROM contacts WHERE email"  # noqa: S608
_INSERT_TAG = (
    "INSERT INTO contact_tags (contact_id, tag) VALUES (?, ?) "
    "ON CONFLICT (contact_id, tag) DO NOTHING"
)
_INSERT_CONSENT = (
    "INSERT INTO consents (contact_id, channel, status, method, ip, detail, recorded_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_STATUS = "UPDATE contacts SET email_status = ?, updated_at = ? WHERE id = ?"
_INSERT_MEMBER = (
    "INSERT INTO list_members (list_id, contact_id, status, added_at, confirmed_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (list_id, contact_id) DO NOTHING"
)


@lru_cache(maxsize=64)
def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


class SqliteStore:
    """A batch's statements on the SQLite connection of ``conn``'s transaction."""

    reports_skipped = False  # insert_contacts reads the ids back by address

    def __init__(self, conn: Connection) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None and raw.in_transaction  # BEGIN IMMEDIATE, by run_write
        self.cursor = raw.cursor()
        self.from_json = resulter(conn, contacts.c.attributes)

    def _select_in(self, select: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(values):
            # fetchall builds the list in C: a generator cost ~2 µs per row read.
            rows += self.cursor.execute(f"{select} IN ({_marks(len(chunk))})", chunk).fetchall()
        return rows

    def forgotten(self, digests: list[str]) -> set[str]:
        select = "SELECT value FROM suppressions WHERE kind = 'hash' AND value"
        return {value for (value,) in self._select_in(select, digests)}

    def existing(self, emails: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for values in self._select_in(_SELECT_EXISTING, emails):
            stored = dict(zip(EXISTING_COLUMNS, values, strict=True))
            stored["attributes"] = self.from_json(stored["attributes"])
            found[stored["email"]] = stored
        return found

    def tags(self, ids: list[int]) -> set[tuple[int, str]]:
        select = "SELECT contact_id, tag FROM contact_tags WHERE contact_id"
        return {(int(contact_id), tag) for contact_id, tag in self._select_in(select, ids)}

    def insert_contacts(
        self, records: list[tuple[Any, ...]], constants: dict[str, Any]
    ) -> dict[str, int]:
        shared = tuple(constants[name] for name in _CONTACT_CONSTANTS)
        (top,) = self.cursor.execute("SELECT max(id) FROM contacts").fetchone()
        self.cursor.executemany(_INSERT_CONTACT, [record + shared for record in records])
        top = top or 0
        if self.cursor.rowcount == len(records) and top + len(records) < _MAX_ROWID:
            # Every row went in, in order, each with the id one above the largest in the
            # table (id is the rowid: https://sqlite.org/autoinc.html, "the usual
            # algorithm", used below the largest possible rowid). Reading them back cost
            # 1.4 µs per row.
            return {record[0]: top + n for n, record in enumerate(records, start=1)}
        # Under the write lock, the addresses the batch read did not find are the ones
        # just inserted.
        select = "SELECT email, id FROM contacts WHERE email"
        found = self._select_in(select, [record[0] for record in records])
        return {email: int(contact_id) for email, contact_id in found}

    def update_contacts(self, records: list[tuple[Any, ...]]) -> None:
        self.cursor.executemany(_UPDATE_CONTACT, records)

    def insert_tags(self, records: list[tuple[int, str]], *, fresh: bool) -> None:
        # ON CONFLICT costs SQLite nothing more than the unique check it makes anyway.
        del fresh
        self.cursor.executemany(_INSERT_TAG, records)

    def insert_consents(self, records: list[tuple[Any, ...]], *, fresh: bool) -> None:
        del fresh
        self.cursor.executemany(_INSERT_CONSENT, records)

    def update_statuses(self, records: list[tuple[Any, ...]]) -> None:
        self.cursor.executemany(_UPDATE_STATUS, records)

    def insert_members(self, records: list[tuple[Any, ...]], *, fresh: bool) -> None:
        del fresh
        self.cursor.executemany(_INSERT_MEMBER, records)
