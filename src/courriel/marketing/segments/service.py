"""Saved segments (CRUD) and evaluating a segment: its size and its members, paged by id.

Owns: the ``segments`` table. A definition is validated by
:func:`~courriel.marketing.segments.parse.parse_segment` before it is stored, and stored in
its normalised JSON form (:func:`~courriel.marketing.segments.parse.to_json`).

Invariants:
- Names are unique (``AlreadyExists`` otherwise); membership is never stored: it is computed
  when asked, from the data as it is then (segments are dynamic).
- Members are paged by id (``id > after_id ORDER BY id LIMIT n``), never by OFFSET, so a
  page costs the same wherever it is and a walk sees every member once even while
  contacts are added.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any as AnyValue

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing.segments.compile import compile_segment, count_query
from courriel.marketing.segments.parse import parse_segment, to_json
from courriel.marketing.segments.sqlparts import read_settings
from courriel.marketing.segments.tree import Node
from courriel.storage.db import Database
from courriel.storage.models.base import utcnow
from courriel.storage.models.marketing import contacts, segments

__all__ = [
    "MAX_PAGE",
    "Segment",
    "count",
    "create",
    "delete",
    "get",
    "list",
    "members",
    "update",
]

MAX_PAGE = 10_000
MAX_NAME = 128


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """A saved segment."""

    id: int
    name: str
    definition: Node
    created_at: datetime
    updated_at: datetime


def _name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned or len(cleaned) > MAX_NAME:
        raise InvalidInput(f"a segment name has 1 to {MAX_NAME} characters", field="name")
    return cleaned


def _row(row: Row[AnyValue]) -> Segment:
    return Segment(
        id=row.id,
        name=row.name,
        definition=parse_segment(row.definition),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _name_taken(conn: AsyncConnection, name: str, *, other_than: int = 0) -> bool:
    found = await conn.scalar(
        select(segments.c.id).where(segments.c.name == name, segments.c.id != other_than)
    )
    return found is not None


async def create(
    db: Database, *, name: str, definition: AnyValue, now: datetime | None = None
) -> Segment:
    """Save a new segment.

    Raises:
        InvalidInput: bad name (``field="name"``) or definition (``field`` is the path in it,
            prefixed ``definition/``).
        AlreadyExists: the name is taken.
    """
    name = _name(name)
    node = _definition(definition)
    now = now or utcnow()
    async with db.write() as conn:
        if await _name_taken(conn, name):
            raise AlreadyExists(f"a segment named {name!r} exists already")
        result = await conn.execute(
            segments.insert()
            .values(name=name, definition=to_json(node), created_at=now, updated_at=now)
            .returning(segments.c.id)
        )
        segment_id = int(result.scalar_one())
    return Segment(id=segment_id, name=name, definition=node, created_at=now, updated_at=now)


def _definition(definition: AnyValue) -> Node:
    try:
        return parse_segment(definition)
    except InvalidInput as exc:
        where = f"definition/{exc.field}" if exc.field else "definition"
        raise InvalidInput(str(exc), field=where) from None


async def update(
    db: Database,
    segment_id: int,
    *,
    name: str | None = None,
    definition: AnyValue = None,
    now: datetime | None = None,
) -> Segment:
    """Rename a segment and/or replace its definition (None leaves a part unchanged).

    Raises:
        NotFound: no such segment. InvalidInput, AlreadyExists: as :func:`create`.
    """
    values: dict[str, AnyValue] = {"updated_at": now or utcnow()}
    if name is not None:
        values["name"] = _name(name)
    if definition is not None:
        values["definition"] = to_json(_definition(definition))
    async with db.write() as conn:
        if "name" in values and await _name_taken(conn, values["name"], other_than=segment_id):
            raise AlreadyExists(f"a segment named {values['name']!r} exists already")
        # RETURNING hands back the row as written: no second transaction to read it again.
        row = (
            await conn.execute(
                segments.update()
                .where(segments.c.id == segment_id)
                .values(**values)
                .returning(*segments.c)
            )
        ).first()
        if row is None:
            raise NotFound(f"no segment {segment_id}")
    return _row(row)


async def get(db: Database, segment_id: int) -> Segment:
    """One segment. Raises NotFound."""
    async with db.read() as conn:
        row = (await conn.execute(select(segments).where(segments.c.id == segment_id))).first()
    if row is None:
        raise NotFound(f"no segment {segment_id}")
    return _row(row)


async def list(db: Database) -> builtins.list[Segment]:
    """Every saved segment, by name."""
    async with db.read() as conn:
        rows = (await conn.execute(select(segments).order_by(segments.c.name))).all()
    return [_row(row) for row in rows]


async def delete(db: Database, segment_id: int) -> None:
    """Delete a segment. Raises NotFound."""
    async with db.write() as conn:
        result = await conn.execute(segments.delete().where(segments.c.id == segment_id))
        if result.rowcount == 0:
            raise NotFound(f"no segment {segment_id}")


async def _tune(db: Database, conn: AsyncConnection) -> None:
    """Apply the engine's segment-read planner settings to this read transaction."""
    settings = read_settings(db.dialect)
    if settings is not None:
        await conn.execute(settings)


async def _resolve(db: Database, segment: Node | int) -> Node:
    return (await get(db, segment)).definition if isinstance(segment, int) else segment


async def count(db: Database, segment: Node | int, *, now: datetime | None = None) -> int:
    """How many contacts the segment (a tree or a saved segment's id) selects now.

    Raises:
        NotFound: no saved segment with that id.
    """
    node = await _resolve(db, segment)
    query = count_query(node, now=now or utcnow())
    async with db.read() as conn:
        await _tune(db, conn)
        total = await conn.scalar(query)
    return int(total or 0)


async def members(
    db: Database,
    segment: Node | int,
    *,
    after_id: int = 0,
    limit: int = 100,
    now: datetime | None = None,
) -> builtins.list[int]:
    """One page of member ids, ascending, after ``after_id`` (the last id of the previous page).

    Raises:
        InvalidInput: ``limit`` outside 1..MAX_PAGE or a negative cursor.
        NotFound: no saved segment with that id.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if after_id < 0:
        raise InvalidInput("the cursor must not be negative", field="after_id")
    node = await _resolve(db, segment)
    query = (
        select(contacts.c.id)
        .where(contacts.c.id > after_id, compile_segment(node, now=now or utcnow()))
        .order_by(contacts.c.id)
        .limit(limit)
    )
    async with db.read() as conn:
        await _tune(db, conn)
        return [int(i) for i in (await conn.scalars(query)).all()]
