"""CSV export of contacts, streamed by id cursor, in the import's own format.

Owns the export side of :mod:`courriel.marketing.csvio`: the file written here imports
back to the same contacts (columns of :data:`courriel.marketing.csvio.KNOWN_COLUMNS`,
``email_consent`` from the current email status, one column per custom attribute).

Invariants:
- Memory stays flat: contacts are read in pages of :data:`PAGE` by id (never OFFSET),
  each page in its own short read transaction; a first pass over the attributes collects
  their keys, because a CSV header must come first.
- An attribute whose key collides with a known column (case-insensitively) or starts with
  ``attributes.`` is written as ``attributes.<key>``, which the importer reads back.
- Every cell that a spreadsheet would run as a formula (starting with ``= + - @ TAB CR``,
  OWASP "CSV injection") gets a leading ``'`` (:func:`courriel.marketing.csvio.protect_cell`),
  in every column: an address such as ``=cmd|'/c'!a1@example.com`` is valid, and a
  ``+33…`` phone number starts with ``+``. The importer removes it: the round trip is exact.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from sqlalchemy import Select, select

from courriel.errors import NotFound
from courriel.marketing.csvio import ATTRIBUTE_PREFIX, KNOWN_COLUMNS, protect_cell
from courriel.storage.db import Database
from courriel.storage.models.marketing import contact_tags, contacts, list_members, lists

__all__ = ["PAGE", "export_contacts"]

PAGE = 1000


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def _query(list_id: int | None, after_id: int, columns: Any) -> Select[Any]:
    statement = select(*columns).where(contacts.c.id > after_id)
    if list_id is not None:
        statement = statement.join(
            list_members,
            (list_members.c.contact_id == contacts.c.id) & (list_members.c.list_id == list_id),
        ).where(list_members.c.status != "unsubscribed")
    return statement.order_by(contacts.c.id).limit(PAGE)


async def _pages(
    db: Database, list_id: int | None, columns: Any, *, with_tags: bool
) -> AsyncIterator[list[tuple[Any, list[str]]]]:
    after_id = 0
    while True:
        async with db.read() as conn:
            rows = (await conn.execute(_query(list_id, after_id, columns))).mappings().all()
            if not rows:
                return
            tags: dict[int, list[str]] = {}
            if with_tags:
                found = await conn.execute(
                    select(contact_tags.c.contact_id, contact_tags.c.tag)
                    .where(contact_tags.c.contact_id.in_([row["id"] for row in rows]))
                    .order_by(contact_tags.c.tag)
                )
                for contact_id, tag in found:
                    tags.setdefault(int(contact_id), []).append(tag)
        yield [(row, tags.get(int(row["id"]), [])) for row in rows]
        after_id = int(rows[-1]["id"])


_protect = protect_cell


def _column(value: str | None) -> str:
    return "" if value is None else _protect(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _attribute_header(key: str) -> str:
    lowered = key.lower()
    if lowered in KNOWN_COLUMNS or lowered.startswith(ATTRIBUTE_PREFIX):
        return ATTRIBUTE_PREFIX + key
    return _protect(key)


async def export_contacts(db: Database, out: _Writable, *, list_name: str | None = None) -> int:
    """Write every contact (or the members of one list) as CSV to ``out``.

    Args:
        db: the database.
        out: a text stream (open files with ``newline=""``: the CSV writer ends rows
            with CRLF, RFC 4180 §2).
        list_name: only the subscribed and pending members of this list.

    Returns:
        The number of contacts written.

    Raises:
        NotFound: no list has this name.
    """
    list_id = None
    if list_name is not None:
        async with db.read() as conn:
            found = await conn.execute(select(lists.c.id).where(lists.c.name == list_name.strip()))
            list_id = found.scalar_one_or_none()
        if list_id is None:
            raise NotFound(f"no list {list_name!r}")
    keys: set[str] = set()
    async for page in _pages(db, list_id, [contacts.c.id, contacts.c.attributes], with_tags=False):
        for row, _ in page:
            keys.update((row["attributes"] or {}).keys())
    attribute_keys = sorted(keys)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*KNOWN_COLUMNS, *(_attribute_header(k) for k in attribute_keys)])
    fields = [contacts.c[name] for name in KNOWN_COLUMNS[:9]]
    columns = [contacts.c.id, *fields, contacts.c.email_status, contacts.c.attributes]
    written = 0
    async for page in _pages(db, list_id, columns, with_tags=True):
        for row, tags in page:
            attributes = row["attributes"] or {}
            cells = [_column(row[name]) for name in KNOWN_COLUMNS[:9]]
            cells += [_protect(";".join(tags)), _protect(row["email_status"])]
            cells += [_protect(_text(attributes.get(key))) for key in attribute_keys]
            writer.writerow(cells)
            written += 1
    return written
