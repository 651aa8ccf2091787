"""The SQL constructs of the segment compiler that differ by dialect.

Owns: every piece of segment SQL whose text depends on the engine — ASCII case folding,
reading a JSON value at a key path, and the form of an exclusion — each a SQLAlchemy
construct with one ``@compiles`` rendering per dialect — and the planner settings a segment
read runs with (:func:`read_settings`). compile.py builds everything else from portable
SQLAlchemy expressions.

Invariants: both renderings of a construct select the same rows (the property test in
tests/integration/marketing/test_segments_property.py runs the same trees on both engines
against the reference evaluator); key paths reach the SQL text only after the parser has
restricted them to letters, digits, space and ``_ $ : -``.
"""

from __future__ import annotations

import json
from typing import Any
from typing import Any as AnyValue

from sqlalchemy import (
    ColumnElement,
    Select,
    TextClause,
    exists,
    func,
    literal_column,
    not_,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean, Float, Integer, String

from courriel.storage.models.marketing import contacts

__all__ = [
    "Absent",
    "AnyIn",
    "AsciiLower",
    "JsonHas",
    "JsonPart",
    "SmallFirst",
    "fold",
    "owner_of",
    "read_settings",
]

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FOLD = str.maketrans(_UPPER, _UPPER.lower())


# Transaction-local (set_config(..., true)): they end with the segment's read transaction and
# never leak into a pooled connection. Measured with bench/segments.py on the seeded 1M
# contacts / 10M events (docs/performance.md, "Segments"):
# - work_mem 64MB: the 30-day "Viewed Product" count (144,000 groups) spilled its hash
#   aggregate to disk at the default 4MB (5 batches, 3.5 MB temp per process).
# - no parallel workers: each worker of a Gather builds its own copy of every hashed
#   subplan and hash table (3 copies of the 164,000-event aggregate of segment 3, of the
#   360,000-line hash of segment 4), so on the 2 cores courriel targets a parallel count
#   did the subquery work three times; serially segments 3 and 4 took half the time.
# - jit off: compiling the expressions costs tens of milliseconds once a plan's estimated
#   cost passes jit_above_cost, more than it saves on a count of a million rows.
_PG_READ_SETTINGS = text(
    "SELECT set_config('work_mem', '64MB', true), "
    "set_config('max_parallel_workers_per_gather', '0', true), "
    "set_config('jit', 'off', true)"
)


def read_settings(dialect: str) -> TextClause | None:
    """The statement that tunes the planner for one segment read, None when not needed.

    Run it first in the read transaction that counts or pages a segment; on PostgreSQL it
    sets transaction-local ``work_mem``, parallelism and JIT (see the comment above).
    """
    return _PG_READ_SETTINGS if dialect == "postgresql" else None


def owner_of(column: ColumnElement[AnyValue]) -> ColumnElement[AnyValue]:
    """The contact a row belongs to, 0 for none (ids start at 1, so 0 matches no contact).

    Never NULL, so it can fill an IN / NOT IN list (a NULL there makes the test unknown);
    and being an expression rather than the column, SQLite groups by it with a sort after
    a range scan of the (name, time) index instead of walking a whole (contact_id, …)
    index in order (measured: 70 ms instead of 1 s for a 30-day event count on 10M events).
    """
    return func.coalesce(column, literal_column("0"))


def fold(text: str) -> str:
    """ASCII case folding, the same as the SQL side (A-Z → a-z, nothing else)."""
    return text.translate(_FOLD)


class AsciiLower(FunctionElement[str]):
    """``lower()`` restricted to ASCII letters on every engine."""

    type = String()
    inherit_cache = True
    name = "ascii_lower"


@compiles(AsciiLower)
def _ascii_lower_default(element: AsciiLower, compiler: SQLCompiler, **kw: AnyValue) -> str:
    # SQLite's built-in lower() folds ASCII letters only (without the ICU extension).
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(AsciiLower, "postgresql")
def _ascii_lower_pg(element: AsciiLower, compiler: SQLCompiler, **kw: AnyValue) -> str:
    return f"translate({compiler.process(element.clauses, **kw)}, '{_UPPER}', '{_UPPER.lower()}')"


class JsonPart(FunctionElement[AnyValue]):
    """One part of a JSON value at a key path: its ``kind``, ``text`` or ``number``.

    kind: 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array', NULL when absent.
    text: the string (only meaningful when kind is 'string'); for a boolean, 'true'/'false'.
    number: the number as a float when kind is 'number', else NULL.
    flag: 'true' / 'false' when the value is a boolean; something else or NULL otherwise.
    The key path is validated by the parser (letters, digits, space, ``_ $ : -``), so it is
    written into the SQL as a literal: no quoting problem and a plan per path.
    """

    inherit_cache = False

    def __init__(self, column: ColumnElement[AnyValue], path: tuple[str, ...], part: str) -> None:
        self.path = path
        self.part = part
        self.type = Float() if part == "number" else String()
        super().__init__(column)


def _sqlite_path(path: tuple[str, ...]) -> str:
    return "'$" + "".join(f'."{key}"' for key in path) + "'"


@compiles(JsonPart)
def _json_part_sqlite(element: JsonPart, compiler: SQLCompiler, **kw: AnyValue) -> str:
    column = compiler.process(element.clauses, **kw)
    where = _sqlite_path(element.path)
    kind = f"json_type({column}, {where})"
    if element.part == "kind":
        return (
            f"(CASE {kind} WHEN 'text' THEN 'string' WHEN 'integer' THEN 'number' "
            f"WHEN 'real' THEN 'number' WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' "
            f"ELSE {kind} END)"
        )
    if element.part == "number":
        return f"(CASE WHEN {kind} IN ('integer', 'real') THEN json_extract({column}, {where}) END)"
    if element.part == "flag":
        return kind  # 'true' / 'false' for a boolean, another type name otherwise
    # A boolean's text is its JSON spelling, like PostgreSQL's #>> gives.
    return (
        f"(CASE WHEN {kind} IN ('true', 'false') THEN {kind} "
        f"ELSE json_extract({column}, {where}) END)"
    )


@compiles(JsonPart, "postgresql")
def _json_part_pg(element: JsonPart, compiler: SQLCompiler, **kw: AnyValue) -> str:
    column = compiler.process(element.clauses, **kw)
    array = "'{" + ",".join(f'"{key}"' for key in element.path) + "}'"
    kind = f"jsonb_typeof(({column}) #> {array})"
    if element.part == "kind":
        return kind
    if element.part == "number":
        return f"(CASE WHEN {kind} = 'number' THEN (({column}) #>> {array})::float8 END)"
    if element.part == "flag":
        return f"(CASE WHEN {kind} = 'boolean' THEN ({column}) #>> {array} END)"
    return f"(({column}) #>> {array})"


class Absent(ColumnElement[bool]):
    """The contact owns no row of ``source`` that matches ``wheres`` (no HAVING involved).

    The two forms select the same contacts; each engine gets the one it plans well:
    PostgreSQL turns a correlated NOT EXISTS into an anti-join (hash or index nested loop,
    whichever side is small), whereas SQLite runs it as one index probe per contact and is
    faster with ``contacts.id NOT IN (list)``, which it builds once into an ephemeral index.
    """

    inherit_cache = False
    type = Boolean()
    # A predicate, not a boolean column: SQLite must not get "= 1" appended.
    _is_implicitly_boolean = True

    def __init__(
        self,
        owner: ColumnElement[AnyValue],
        source: FromClause,
        wheres: list[ColumnElement[bool]],
        *,
        per_row: bool = False,
    ) -> None:
        listed = select(owner_of(owner)).select_from(source).where(*wheres)
        self.listed = contacts.c.id.not_in(listed)
        absent = not_(exists().select_from(source).where(owner == contacts.c.id, *wheres))
        # per_row: "(NOT EXISTS …) IS TRUE" is no longer a join qual, so PostgreSQL keeps it
        # as a filter that probes the source's index once per contact reaching it (a few µs
        # each): right for a few thousand contacts, far slower than the anti-join for many
        # (128,497 contacts: 380 → 1,125 ms), hence only used by SmallFirst's small arm.
        self.correlated = absent.is_(true()) if per_row else absent


@compiles(Absent)
def _absent_default(element: Absent, compiler: SQLCompiler, **kw: AnyValue) -> str:
    return compiler.process(element.listed, **kw)


@compiles(Absent, "postgresql")
def _absent_pg(element: Absent, compiler: SQLCompiler, **kw: AnyValue) -> str:
    return compiler.process(element.correlated, **kw)


class AnyIn(ColumnElement[bool]):
    """The contact is in any of several id lists: an OR of semi-joins, planned per engine.

    PostgreSQL runs each ``contacts.id IN (…)`` under an OR as its own hashed subplan, one
    probe per contact and branch (~240 ns each here), so an OR of three cost three
    million probes on a million contacts. It gets one list instead, the UNION ALL of the
    branches, tested ``IS TRUE`` so that it stays one hashed subplan: as a bare IN the
    planner would turn it into a semi-join, estimate 200 distinct ids for the union and
    probe the contacts one by one (measured slower). Segment 5 of bench/segments.py: 508 →
    314 ms of CPU. SQLite keeps the OR, which it plans as a union of rowid lookups driven
    by each list (MULTI-INDEX OR). Each list selects non-NULL ids, so IN is never unknown.
    """

    inherit_cache = False
    type = Boolean()
    _is_implicitly_boolean = True

    def __init__(self, lists: list[Select[Any]]) -> None:
        self.branches = or_(*(contacts.c.id.in_(ids) for ids in lists))
        self.merged = contacts.c.id.in_(union_all(*lists)).is_(true())


# Parenthesised: SQLAlchemy does not group a custom element by precedence, and a bare
# "a OR b" inside "… AND x" would bind as "a OR (b AND x)".
@compiles(AnyIn)
def _any_in_default(element: AnyIn, compiler: SQLCompiler, **kw: AnyValue) -> str:
    return f"({compiler.process(element.branches, **kw)})"


@compiles(AnyIn, "postgresql")
def _any_in_pg(element: AnyIn, compiler: SQLCompiler, **kw: AnyValue) -> str:
    return f"({compiler.process(element.merged, **kw)})"


class JsonHas(ColumnElement[bool]):
    """A contact attribute equals a JSON boolean: ``exact``, plus a GIN probe on PostgreSQL.

    PostgreSQL renders ``(attributes @> '{"key": true}' AND exact)``: the containment test
    is served by ix_contacts_attributes (GIN, jsonb_path_ops, PostgreSQL only) as a bitmap
    scan, and for a top-level key and a boolean it selects exactly the rows ``exact``
    selects (``exact`` only rechecks them). Other engines render ``exact`` alone. The key
    was validated by the parser (letters, digits, space, ``_ $ : -``), so its JSON text
    has no quote to escape in the SQL literal.
    """

    inherit_cache = False
    type = Boolean()
    _is_implicitly_boolean = True

    def __init__(self, key: str, value: bool, exact: ColumnElement[bool]) -> None:
        self.document = json.dumps({key: value})
        self.exact = exact


@compiles(JsonHas)
def _json_has_default(element: JsonHas, compiler: SQLCompiler, **kw: AnyValue) -> str:
    return f"({compiler.process(element.exact, **kw)})"


@compiles(JsonHas, "postgresql")
def _json_has_pg(element: JsonHas, compiler: SQLCompiler, **kw: AnyValue) -> str:
    column = compiler.process(contacts.c.attributes, **kw)
    exact = compiler.process(element.exact, **kw)
    return f"({column} @> '{element.document}'::jsonb AND {exact})"


class SmallFirst(ColumnElement[int]):
    """A count whose plan PostgreSQL picks once it knows how big the driving id set is.

    A segment ``all`` that holds a grouped condition (``IN (SELECT … GROUP BY … HAVING
    count(*) >= N)``) and an exclusion (``Absent``) is planned on the grouped set's estimate,
    which PostgreSQL cannot make: it assumes a third of the groups pass any HAVING. Segment 3
    of bench/segments.py ("viewed ≥ 3 in 30 d, no order in 30 d"): 34,553 contacts
    expected, 957 found, so the exclusion became a hash anti-join over all 119,585 orders of
    the window instead of 957 index probes. PostgreSQL renders

        CASE WHEN (SELECT count(*) FROM (SELECT 1 FROM driver LIMIT small + 1)) <= small
             THEN small_count ELSE large_count END

    with ``driver`` the grouped set as a CTE (used three times, so computed once) and both
    counts joining it to contacts: ``small_count`` with per-row exclusions, ``large_count``
    with anti-joins. Scalar subqueries are init plans, run only when the CASE reaches
    them, so the statement does the grouping once and one of the two counts. Other engines
    render ``plain``, the ordinary count (SQLite builds each exclusion list once anyway).
    """

    inherit_cache = False
    type = Integer()

    def __init__(
        self,
        *,
        plain: Select[Any],
        probe: Select[Any],
        small: int,
        small_count: Select[Any],
        large_count: Select[Any],
    ) -> None:
        self.plain = plain.scalar_subquery()
        self.probe = probe.limit(small + 1).subquery()
        self.small = small
        self.small_count = small_count.scalar_subquery()
        self.large_count = large_count.scalar_subquery()


@compiles(SmallFirst)
def _small_first_default(element: SmallFirst, compiler: SQLCompiler, **kw: AnyValue) -> str:
    return compiler.process(element.plain, **kw)


@compiles(SmallFirst, "postgresql")
def _small_first_pg(element: SmallFirst, compiler: SQLCompiler, **kw: AnyValue) -> str:
    size = select(func.count()).select_from(element.probe).scalar_subquery()
    return (
        f"CASE WHEN {compiler.process(size, **kw)} <= {int(element.small)} "
        f"THEN {compiler.process(element.small_count, **kw)} "
        f"ELSE {compiler.process(element.large_count, **kw)} END"
    )
